"""DDIM sampling (Song et al. 2021) as a plain function of a noise predictor.

The predictor knows the model and its conditioning; this module knows only the update rule
and the tables of `ldm.schedule`. Latents and the update stay float32.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ldm.progress import Cancelled
from ldm.schedule import DDIMTables

MIN_DIRECTION_VARIANCE = 1e-7

# eps = predict_noise(x_t, t, index): x_t float32, t an int timestep, index into the tables.
NoisePredictor = Callable[[torch.Tensor, int, int], torch.Tensor]
# noise_source(step_number, like) -> a standard normal tensor shaped and placed like `like`.
NoiseSource = Callable[[int, torch.Tensor], torch.Tensor]
# callback(step_number, total, x) after each step; returning True stops the run (Cancelled).
StepCallback = Callable[[int, int, torch.Tensor], bool | None]


def ddim_step(x: torch.Tensor, eps: torch.Tensor, tables: DDIMTables, index: int,
              noise: torch.Tensor | None) -> torch.Tensor:
    """x_{t_prev} from x_t and the predicted noise, at DDIM index `index`; no clipping of x0."""
    a, a_prev, sigma, sqrt_one_minus_a = (
        table[index].to(x.device) for table in
        (tables.alphas, tables.alphas_prev, tables.sigmas, tables.sqrt_one_minus_alphas))
    eps = eps.float()
    pred_x0 = (x - sqrt_one_minus_a * eps) / a.sqrt()
    direction = torch.clamp(1.0 - a_prev - sigma ** 2, min=MIN_DIRECTION_VARIANCE).sqrt() * eps
    x_prev = a_prev.sqrt() * pred_x0 + direction
    if noise is not None:
        x_prev = x_prev + sigma * noise
    return x_prev


def sample_ddim(predict_noise: NoisePredictor, x_T: torch.Tensor, tables: DDIMTables,
                noise_source: NoiseSource, callback: StepCallback | None = None) -> torch.Tensor:
    """Run all DDIM steps from x_T (highest timestep first) and return x_0.

    noise_source is asked once per step except the last, which adds no noise; it is asked
    even when eta = 0 (then sigma = 0), so that a seed gives the same draws for any eta.
    """
    x = x_T.float()
    total = len(tables)
    for step_number, index in enumerate(reversed(range(total)), start=1):
        eps = predict_noise(x, int(tables.timesteps[index]), index)
        noise = noise_source(step_number - 1, x) if index > 0 else None
        x = ddim_step(x, eps, tables, index, noise)
        if callback is not None and callback(step_number, total, x):
            raise Cancelled(f"cancelled after step {step_number} of {total}")
    return x
