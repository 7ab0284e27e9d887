"""Noise schedule of the model (SD-1.x scaled-linear betas) and DDIM tables, as plain functions.

Everything here is float32 on the CPU unless said otherwise; the DDIM sigmas are computed in
float64 and then rounded to float32, as the reference does (facts §3.8, golden README).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_TRAIN_TIMESTEPS = 1000
LINEAR_START = 0.00085
LINEAR_END = 0.012
POSTERIOR_LOG_VARIANCE_MIN = -10.0


def scaled_linear_betas(num_timesteps: int = NUM_TRAIN_TIMESTEPS, start: float = LINEAR_START,
                        end: float = LINEAR_END) -> torch.Tensor:
    """beta_t = linspace(sqrt(start), sqrt(end), T)_t^2 in float32."""
    return torch.linspace(start ** 0.5, end ** 0.5, num_timesteps, dtype=torch.float32) ** 2


def ddpm_buffers(betas: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's persistent schedule buffers, named as in the checkpoint."""
    alphas = 1.0 - betas
    alphas_cumprod = torch.cumprod(alphas, dim=0)
    # As the reference: the posterior terms come out in float64 (promotion), stored as float32.
    alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    log_variance = posterior_variance.clamp(min=1e-20).log().clamp(min=POSTERIOR_LOG_VARIANCE_MIN)
    return {
        "betas": betas,
        "alphas": alphas,
        "alphas_cumprod": alphas_cumprod,
        "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
        "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
        "posterior_variance": posterior_variance.float(),
        "posterior_log_variance_clipped": log_variance.float(),
    }


def ddim_timesteps(steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """The reference's "uniform" discretisation, ascending: 0, c, 2c, ... below T, plus 1
    (c = T // steps). For steps that do not divide T this gives more entries than asked
    (as the reference does); entries that would reach T are dropped."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be between 1 and {num_train_timesteps}, got {steps}")
    stride = num_train_timesteps // steps
    timesteps = torch.arange(0, num_train_timesteps, stride, dtype=torch.long) + 1
    return timesteps[timesteps < num_train_timesteps]


@dataclass(frozen=True)
class DDIMTables:
    """Per DDIM index i (ascending time): the timestep and the update's scalars, float32."""

    timesteps: torch.Tensor             # (S,) int64
    alphas: torch.Tensor                # a_i = alphas_cumprod[t_i]
    alphas_prev: torch.Tensor           # alphas_cumprod[t_{i-1}]; alphas_cumprod[0] at i = 0
    sigmas: torch.Tensor                # eta * sqrt((1 - a_prev)/(1 - a) * (1 - a/a_prev))
    sqrt_one_minus_alphas: torch.Tensor

    def __len__(self) -> int:
        return int(self.timesteps.shape[0])


def ddim_tables(alphas_cumprod: torch.Tensor, steps: int, eta: float) -> DDIMTables:
    """DDIM tables from the model's alphas_cumprod buffer (its values, as loaded)."""
    alphas_cumprod = alphas_cumprod.detach().float().cpu()
    timesteps = ddim_timesteps(steps, alphas_cumprod.shape[0])
    alphas = alphas_cumprod[timesteps]
    alphas_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[timesteps[:-1]]])
    a, a_prev = alphas.double(), alphas_prev.double()
    sigmas = eta * torch.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
    return DDIMTables(timesteps=timesteps, alphas=alphas, alphas_prev=alphas_prev,
                      sigmas=sigmas.float(), sqrt_one_minus_alphas=torch.sqrt(1.0 - alphas))
