"""Embeddings of the diffusion time and of the target viewpoint relative to the input view."""
from __future__ import annotations

import math

import torch
from torch import nn

# The targets all sit at elevation 30 degrees (reference: hard-coded, facts §3.3).
TARGET_ELEVATION_RAD = math.radians(30.0)
VIEWPOINT_DIM = 4


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (B,) -> (B, dim) in float32: [cos(t f_k), sin(t f_k)], cos first,
    f_k = exp(-ln(max_period) k / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def time_mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> SiLU -> Linear, the layout of both `time_embed` modules (keys .0 and .2)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))


def wrap_azimuth(azimuth: torch.Tensor) -> torch.Tensor:
    """Radians to [-pi, pi), as the reference stores its `azimuth` buffer (in float32)."""
    return torch.remainder(azimuth.float() + math.pi, 2 * math.pi) - math.pi


def viewpoint_embedding(elevation: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    """Camera delta from the input view to every target view, (B, N, 4), float32.

    elevation: (B,) input elevation in radians; azimuth: (N,) wrapped target azimuths, whose
    first entry is the input view's azimuth. Per view: [e_in - 30deg, sin da, cos da, 0], the
    zero123 (d_polar, sin d_azimuth, cos d_azimuth, d_radius) convention.
    """
    elevation = elevation.float()
    # zero123 polar angles: target -(30deg) minus input -(e_in); kept in this order for rounding.
    d_elevation = (-TARGET_ELEVATION_RAD) - (-elevation)
    d_azimuth = azimuth.float() - azimuth[:1].float()
    batch, views = elevation.shape[0], azimuth.shape[0]
    d_elevation = d_elevation[:, None].expand(batch, views)
    d_azimuth = d_azimuth[None, :].expand(batch, views)
    return torch.stack([d_elevation, torch.sin(d_azimuth), torch.cos(d_azimuth),
                        torch.zeros_like(d_azimuth)], dim=-1)
