"""One image in, 16 decoded views out: the reference's `model.sample` with the DDIM sampler
(docs/contracts.md §1).

Random draws come from one CPU generator in the reference's order (posterior noise, x_T, one
draw per step except the last) and are then moved to the model's device, so a seed gives the
same draws on every device. `noise=` replaces them (golden tests).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ldm.models.syncdreamer import LATENT_CHANNELS, LATENT_SCALE, Conditioning, SyncDreamer
from ldm.progress import Cancelled, Progress
from ldm.samplers.ddim import sample_ddim
from ldm.schedule import ddim_tables

ProgressCallback = Callable[[Progress], bool | None]


def _elevations_rad(elevation_deg, count: int) -> torch.Tensor:
    """Input elevation(s) in degrees -> (count,) radians in float32 (converted in float64 first)."""
    values = torch.as_tensor(elevation_deg, dtype=torch.float64).flatten()
    if values.numel() == 1:
        values = values.expand(count)
    if values.numel() != count:
        raise ValueError(f"elevation_deg has {values.numel()} values for {count} input images; "
                         f"give one value, or one per image.")
    return (values * (math.pi / 180.0)).float()


def _check_image(image: torch.Tensor, size: int) -> None:
    if not isinstance(image, torch.Tensor) or not image.is_floating_point() or image.dim() != 4 \
            or tuple(image.shape[1:]) != (3, size, size):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a float tensor (B, 3, {size}, {size}) in [-1, 1], got {shape}; "
                         f"preprocess the input to {size}x{size} RGB first.")


def _draw(shape: Sequence[int], generator: torch.Generator | None, injected, name: str,
          device: torch.device) -> torch.Tensor:
    """A standard normal draw from the CPU generator, or the injected tensor, on `device`."""
    if injected is None:
        return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device)
    injected = torch.as_tensor(injected, dtype=torch.float32)
    if tuple(injected.shape) != tuple(shape):
        raise ValueError(f"noise[{name!r}] has shape {tuple(injected.shape)}, expected {tuple(shape)}.")
    return injected.to(device)


def prepare_conditioning(model: SyncDreamer, image: torch.Tensor, elevation_deg, posterior_noise: torch.Tensor,
                         sample_num: int = 1, use_posterior_mean: bool = False) -> Conditioning:
    """The denoiser's conditioning for each of `sample_num` samples per input image: the VAE
    posterior sample (mean + std * posterior_noise, or the mean) scaled by 0.18215, the CLIP
    embedding and the elevation in radians."""
    image = image.to(device=model.device, dtype=torch.float32).contiguous()
    mean, logvar = model.encode_posterior(image)
    clip_embed = model.embed_clip(image)
    mean, logvar, clip_embed = (t.repeat_interleave(sample_num, dim=0) for t in (mean, logvar, clip_embed))
    latent = mean if use_posterior_mean else mean + torch.exp(0.5 * logvar) * posterior_noise.to(mean.device)
    elevation = _elevations_rad(elevation_deg, image.shape[0]).repeat_interleave(sample_num)
    return Conditioning(x_input=latent * LATENT_SCALE, clip_embed=clip_embed,
                        elevation=elevation.to(model.device))


def sample_latents(model: SyncDreamer, image: torch.Tensor, elevation_deg, steps: int = 50,
                   cfg_scale: float = 2.0, eta: float = 1.0, batch_view_num: int = 16, sample_num: int = 1,
                   generator: torch.Generator | None = None, use_posterior_mean: bool = False,
                   callback: ProgressCallback | None = None, noise: dict | None = None) -> torch.Tensor:
    """The denoised latents (B, N, 4, h, w), float32 on the model's device; arguments as `generate`."""
    _check_image(image, model.image_size)
    if batch_view_num < 1 or sample_num < 1:
        raise ValueError(f"batch_view_num and sample_num must be at least 1 "
                         f"(got {batch_view_num} and {sample_num}).")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("generator must be a CPU torch.Generator: every draw is made on the CPU "
                         "so that a seed gives the same result on every device.")
    model.check_cameras()
    noise = dict(noise or {})
    device = model.device
    batch, views, size = image.shape[0] * sample_num, model.view_num, model.latent_size
    tables = ddim_tables(model.alphas_cumprod, steps, eta)
    step_noise = noise.get("steps")
    if step_noise is not None and len(step_noise) < len(tables) - 1:
        raise ValueError(f"noise['steps'] holds {len(step_noise)} tensors; {len(tables) - 1} "
                         f"are needed for {len(tables)} steps.")

    with torch.no_grad():
        # The posterior draw is made even for the mean, so a seed gives the same x_T either way.
        posterior_noise = _draw((batch, LATENT_CHANNELS, size, size), generator, noise.get("posterior"),
                                "posterior", device)
        cond = prepare_conditioning(model, image, elevation_deg, posterior_noise, sample_num,
                                    use_posterior_mean)
        x_T = _draw((batch, views, LATENT_CHANNELS, size, size), generator, noise.get("x_T"), "x_T", device)

        def noise_source(step_index: int, like: torch.Tensor) -> torch.Tensor:
            injected = None if step_noise is None else step_noise[step_index]
            return _draw(like.shape, generator, injected, f"steps[{step_index}]", like.device)

        constants = model.step_constants(cond)  # once: nothing in it changes between steps

        def predict_noise(x: torch.Tensor, t: int, index: int) -> torch.Tensor:
            return model.predict_noise(x, t, constants, cfg_scale, batch_view_num)

        def after_step(step: int, total: int, x: torch.Tensor) -> bool:
            return bool(callback is not None and callback(Progress("sampling", step, total)))

        return sample_ddim(predict_noise, x_T, tables, noise_source, after_step)


def decode_views(model: SyncDreamer, latents: torch.Tensor,
                 callback: ProgressCallback | None = None) -> torch.Tensor:
    """Latents (B, N, 4, h, w) -> views (B, N, 3, H, W) float32 on the CPU, one view at a time."""
    views = latents.shape[1]
    decoded = []
    # In low-memory mode the VAE visits the device once for all views.
    with torch.no_grad(), model.on_model_device(model.first_stage_model):
        for view in range(views):
            decoded.append(model.decode_latents(latents[:, view]).cpu())
            if callback is not None and callback(Progress("decoding", view + 1, views)):
                raise Cancelled(f"cancelled while decoding, after view {view + 1} of {views}")
    return torch.stack(decoded, dim=1)


def generate(model: SyncDreamer, image: torch.Tensor, elevation_deg, steps: int = 50,
             cfg_scale: float = 2.0, eta: float = 1.0, batch_view_num: int = 16, sample_num: int = 1,
             generator: torch.Generator | None = None, use_posterior_mean: bool = False,
             callback: ProgressCallback | None = None, noise: dict | None = None) -> torch.Tensor:
    """Denoise 16 views for each input image and decode them.

    image: (n, 3, 256, 256) in [-1, 1]; each image gives `sample_num` samples (B = n * sample_num,
    sample-major per image). elevation_deg: the input view's elevation, one value or one per image.
    steps, eta: DDIM steps and stochasticity (1.0 as the reference). cfg_scale: guidance scale
    (1.0 runs the conditional pass only). batch_view_num: views per UNet call, with both guidance
    branches in the same call (fewer need less memory; the result is the same).
    use_posterior_mean conditions on the VAE posterior mean instead of a sample (the posterior
    draw is still made, so x_T is the same for both). callback(Progress) returning True stops the
    run with ldm.Cancelled. noise: dict(posterior=(B,4,h,w), x_T=(B,N,4,h,w), steps=[(B,N,4,h,w)]*)
    replaces the draws. Returns (B, N, 3, 256, 256) float32 on the CPU, not clamped.
    """
    latents = sample_latents(model, image, elevation_deg, steps=steps, cfg_scale=cfg_scale, eta=eta,
                             batch_view_num=batch_view_num, sample_num=sample_num, generator=generator,
                             use_posterior_mean=use_posterior_mean, callback=callback, noise=noise)
    return decode_views(model, latents, callback)
