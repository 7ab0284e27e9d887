"""The small networks of SyncDreamer's volume branch (facts §3.5, §3.6): a 2D encoder of each
noisy view, a 3D U-Net over the shared spatial volume and a 3D U-Net over each target frustum.

All are conditioned on the 256-d time embedding and (except the spatial net) the 4-d view
embedding, added to the input of every block through 1x1 convolutions.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ldm.modules.normalization import GroupNormFloat32

NORM_GROUPS = 8


def _as_map(vector: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """(B, C) -> (B, C, 1, ...) so that a 1x1 conv of it broadcasts over the feature map."""
    return vector.view(*vector.shape, *([1] * spatial_dims))


class Image2DResBlockWithTV(nn.Module):
    """y = x + F(x + T(t) + V(v)), F = (GN, SiLU, conv3x3) twice."""

    def __init__(self, dim: int, time_dim: int, view_dim: int):
        super().__init__()
        self.time_embed = nn.Conv2d(time_dim, dim, 1)
        self.view_embed = nn.Conv2d(view_dim, dim, 1)
        self.conv = nn.Sequential(
            GroupNormFloat32(NORM_GROUPS, dim), nn.SiLU(), nn.Conv2d(dim, dim, 3, padding=1),
            GroupNormFloat32(NORM_GROUPS, dim), nn.SiLU(), nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        conditioned = x + self.time_embed(_as_map(t, 2)) + self.view_embed(_as_map(v, 2))
        return x + self.conv(conditioned)


class NoisyTargetViewEncoder(nn.Module):
    """One noisy latent view (B, 4, h, w) -> features (B, output_dim, h, w)."""

    def __init__(self, time_dim: int, view_dim: int, run_dim: int = 16, output_dim: int = 16,
                 latent_channels: int = 4):
        super().__init__()
        self.init_conv = nn.Conv2d(latent_channels, run_dim, 3, padding=1)
        self.out_conv0 = Image2DResBlockWithTV(run_dim, time_dim, view_dim)
        self.out_conv1 = Image2DResBlockWithTV(run_dim, time_dim, view_dim)
        self.out_conv2 = Image2DResBlockWithTV(run_dim, time_dim, view_dim)
        self.final_out = nn.Sequential(GroupNormFloat32(NORM_GROUPS, run_dim), nn.SiLU(),
                                       nn.Conv2d(run_dim, output_dim, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = self.init_conv(x)
        x = self.out_conv0(x, t, v)
        x = self.out_conv1(x, t, v)
        x = self.out_conv2(x, t, v)
        return self.final_out(x)


class SpatialTimeBlock(nn.Module):
    """conv3d(SiLU(GN(x + T(t)))), stride 1 or 2; no residual. `bn` is a GroupNorm (reference name)."""

    def __init__(self, in_dim: int, out_dim: int, time_dim: int, stride: int):
        super().__init__()
        self.t_conv = nn.Conv3d(time_dim, in_dim, 1)
        self.bn = GroupNormFloat32(NORM_GROUPS, in_dim)
        self.silu = nn.SiLU()
        self.conv = nn.Conv3d(in_dim, out_dim, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(self.silu(self.bn(x + self.t_conv(_as_map(t, 3)))))


class SpatialUpTimeBlock(nn.Module):
    """As SpatialTimeBlock, with a stride-2 transposed conv that doubles every side."""

    def __init__(self, in_dim: int, out_dim: int, time_dim: int):
        super().__init__()
        self.t_conv = nn.Conv3d(time_dim, in_dim, 1)
        self.norm = GroupNormFloat32(NORM_GROUPS, in_dim)
        self.silu = nn.SiLU()
        self.conv = nn.ConvTranspose3d(in_dim, out_dim, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(self.silu(self.norm(x + self.t_conv(_as_map(t, 3)))))


class SpatialTime3DNet(nn.Module):
    """3D U-Net over the spatial volume (B, input_dim, V, V, V) -> (B, dims[0], V, V, V)."""

    def __init__(self, time_dim: int, input_dim: int, dims: Sequence[int]):
        super().__init__()
        d0, d1, d2, d3 = dims
        self.init_conv = nn.Conv3d(input_dim, d0, 3, padding=1)
        self.conv0 = SpatialTimeBlock(d0, d0, time_dim, stride=1)
        self.conv1 = SpatialTimeBlock(d0, d1, time_dim, stride=2)
        self.conv2_0 = SpatialTimeBlock(d1, d1, time_dim, stride=1)
        self.conv2_1 = SpatialTimeBlock(d1, d1, time_dim, stride=1)
        self.conv3 = SpatialTimeBlock(d1, d2, time_dim, stride=2)
        self.conv4_0 = SpatialTimeBlock(d2, d2, time_dim, stride=1)
        self.conv4_1 = SpatialTimeBlock(d2, d2, time_dim, stride=1)
        self.conv5 = SpatialTimeBlock(d2, d3, time_dim, stride=2)
        self.conv6_0 = SpatialTimeBlock(d3, d3, time_dim, stride=1)
        self.conv6_1 = SpatialTimeBlock(d3, d3, time_dim, stride=1)
        self.conv7 = SpatialUpTimeBlock(d3, d2, time_dim)
        self.conv8 = SpatialUpTimeBlock(d2, d1, time_dim)
        self.conv9 = SpatialUpTimeBlock(d1, d0, time_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c0 = self.conv0(self.init_conv(x), t)
        c2 = self.conv2_1(self.conv2_0(self.conv1(c0, t), t), t)
        c4 = self.conv4_1(self.conv4_0(self.conv3(c2, t), t), t)
        x = self.conv6_1(self.conv6_0(self.conv5(c4, t), t), t)
        x = c4 + self.conv7(x, t)
        x = c2 + self.conv8(x, t)
        return c0 + self.conv9(x, t)


class FrustumTVBlock(nn.Module):
    """conv3d(SiLU(GN(x + T(t) + V(v)))), stride 1 or 2."""

    def __init__(self, in_dim: int, out_dim: int, time_dim: int, view_dim: int, stride: int):
        super().__init__()
        self.t_conv = nn.Conv3d(time_dim, in_dim, 1)
        self.v_conv = nn.Conv3d(view_dim, in_dim, 1)
        self.bn = GroupNormFloat32(NORM_GROUPS, in_dim)
        self.silu = nn.SiLU()
        self.conv = nn.Conv3d(in_dim, out_dim, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = x + self.t_conv(_as_map(t, 3)) + self.v_conv(_as_map(v, 3))
        return self.conv(self.silu(self.bn(x)))


class FrustumTVUpBlock(nn.Module):
    """As FrustumTVBlock, with a stride-2 transposed conv that doubles every side."""

    def __init__(self, in_dim: int, out_dim: int, time_dim: int, view_dim: int):
        super().__init__()
        self.t_conv = nn.Conv3d(time_dim, in_dim, 1)
        self.v_conv = nn.Conv3d(view_dim, in_dim, 1)
        self.norm = GroupNormFloat32(NORM_GROUPS, in_dim)
        self.silu = nn.SiLU()
        self.conv = nn.ConvTranspose3d(in_dim, out_dim, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = x + self.t_conv(_as_map(t, 3)) + self.v_conv(_as_map(v, 3))
        return self.conv(self.silu(self.norm(x)))


class FrustumTV3DNet(nn.Module):
    """3D U-Net over one frustum volume (B, dims[0], D, h, w) -> {width: features} at 4 scales."""

    def __init__(self, time_dim: int, view_dim: int, dims: Sequence[int]):
        super().__init__()
        d0, d1, d2, d3 = dims
        self.conv0 = nn.Conv3d(d0, d0, 3, padding=1)
        self.conv1 = FrustumTVBlock(d0, d1, time_dim, view_dim, stride=2)
        self.conv2 = FrustumTVBlock(d1, d1, time_dim, view_dim, stride=1)
        self.conv3 = FrustumTVBlock(d1, d2, time_dim, view_dim, stride=2)
        self.conv4 = FrustumTVBlock(d2, d2, time_dim, view_dim, stride=1)
        self.conv5 = FrustumTVBlock(d2, d3, time_dim, view_dim, stride=2)
        self.conv6 = FrustumTVBlock(d3, d3, time_dim, view_dim, stride=1)
        self.up0 = FrustumTVUpBlock(d3, d2, time_dim, view_dim)
        self.up1 = FrustumTVUpBlock(d2, d1, time_dim, view_dim)
        self.up2 = FrustumTVUpBlock(d1, d0, time_dim, view_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> dict[int, torch.Tensor]:
        x0 = self.conv0(x)
        x1 = self.conv2(self.conv1(x0, t, v), t, v)
        x2 = self.conv4(self.conv3(x1, t, v), t, v)
        x3 = self.conv6(self.conv5(x2, t, v), t, v)
        x2 = self.up0(x3, t, v) + x2
        x1 = self.up1(x2, t, v) + x1
        x0 = self.up2(x1, t, v) + x0
        # Keyed by feature-map width: the UNet picks the volume matching its own width.
        return {x0.shape[-1]: x0, x1.shape[-1]: x1, x2.shape[-1]: x2, x3.shape[-1]: x3}
