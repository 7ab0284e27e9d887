"""How far a reduced-precision model's noise predictions are from float32's, step by step.

Both models see the same image, the same random draws and, at every step, the same x_t: the
float32 model's own trajectory. So each step's error is that of one noise prediction, not an
accumulated drift of two diverging runs.
"""
from __future__ import annotations

import torch

from ldm.generate import prepare_conditioning
from ldm.models.syncdreamer import LATENT_CHANNELS, SyncDreamer
from ldm.samplers.ddim import sample_ddim
from ldm.schedule import ddim_tables


def relative_error(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    """||candidate - reference|| / ||reference|| over the whole tensor, computed in float64."""
    reference = reference.double()
    return float((candidate.double() - reference).norm() / reference.norm())


def noise_prediction_errors(reference: SyncDreamer, candidate: SyncDreamer, image: torch.Tensor,
                            elevation_deg: float, steps: int = 50, cfg_scale: float = 2.0, eta: float = 1.0,
                            batch_view_num: int = 16, seed: int = 0) -> list[float]:
    """Relative error of the candidate's guided noise prediction against the reference's at each
    DDIM step (highest timestep first); the sampler follows the reference. `image` as ldm.generate."""
    generator = torch.Generator().manual_seed(seed)
    size = reference.latent_size
    posterior_noise = torch.randn(image.shape[0], LATENT_CHANNELS, size, size, generator=generator)
    x_T = torch.randn(image.shape[0], reference.view_num, LATENT_CHANNELS, size, size, generator=generator)
    errors: list[float] = []
    with torch.no_grad():
        constants = [model.step_constants(prepare_conditioning(model, image.to(model.device), elevation_deg,
                                                               posterior_noise))
                     for model in (reference, candidate)]

        def predict_noise(x: torch.Tensor, t: int, index: int) -> torch.Tensor:
            eps_reference = reference.predict_noise(x, t, constants[0], cfg_scale, batch_view_num)
            eps_candidate = candidate.predict_noise(x.to(candidate.device), t, constants[1], cfg_scale,
                                                    batch_view_num)
            errors.append(relative_error(eps_candidate.to(eps_reference.device), eps_reference))
            return eps_reference

        def noise_source(step: int, like: torch.Tensor) -> torch.Tensor:
            return torch.randn(like.shape, generator=generator).to(like.device)

        sample_ddim(predict_noise, x_T.to(reference.device), ddim_tables(reference.alphas_cumprod, steps, eta),
                    noise_source)
    return errors
