"""SyncDreamer's depth-wise attention: every UNet pixel attends over the depth samples of its
own frustum column of the volume features (facts §3.7, "Added depth-wise blocks")."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.normalization import GroupNormFloat32

NORM_GROUPS = 8


def attend_over_depth(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                      fused: bool) -> torch.Tensor:
    """Per pixel and head: softmax over D of q.k / sqrt(d_head), weighting v.

    q (b, inner, H, W); k, v (b, inner, D, H, W); channels head-major. `fused` runs it as
    scaled_dot_product_attention with every pixel its own one-query batch (fused kernels on a
    GPU); otherwise as broadcast products and sums, about three times faster on a CPU.
    """
    b, inner, depth, h, w = k.shape
    dim_head = inner // heads
    if fused:
        q = q.view(b, heads, dim_head, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, heads, 1, dim_head)
        k = k.view(b, heads, dim_head, depth, h, w).permute(0, 4, 5, 1, 3, 2).reshape(b * h * w, heads, depth, dim_head)
        v = v.view(b, heads, dim_head, depth, h, w).permute(0, 4, 5, 1, 3, 2).reshape(b * h * w, heads, depth, dim_head)
        out = F.scaled_dot_product_attention(q, k, v)  # (b*H*W, heads, 1, d_head)
        return out.view(b, h, w, inner).permute(0, 3, 1, 2).contiguous()
    q = q.view(b, heads, dim_head, 1, h, w) * dim_head ** -0.5
    similarity = (q * k.view(b, heads, dim_head, depth, h, w)).sum(dim=2)  # (b, heads, D, H, W)
    weights = similarity.softmax(dim=2).unsqueeze(2)
    return (weights * v.view(b, heads, dim_head, depth, h, w)).sum(dim=3).reshape(b, inner, h, w)


class DepthAttention(nn.Module):
    """Query (b, inner, H, W) over keys/values (b, inner, D, H, W): softmax along D per pixel."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Conv2d(query_dim, inner, 1, bias=False)
        self.to_k = nn.Conv3d(context_dim, inner, 1, bias=False)
        self.to_v = nn.Conv3d(context_dim, inner, 1, bias=False)
        self.to_out = nn.Conv2d(inner, query_dim, 1, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        out = attend_over_depth(self.to_q(x), self.to_k(context), self.to_v(context), self.heads,
                                fused=x.device.type != "cpu")
        return self.to_out(out)


class DepthTransformer(nn.Module):
    """UNet feature (b, dim, H, W) + depth attention over volume features (b, C, D, H, W)."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int):
        super().__init__()
        inner = heads * dim_head
        self.proj_in = nn.Sequential(
            nn.Conv2d(dim, inner, 1), GroupNormFloat32(NORM_GROUPS, inner), nn.SiLU())
        self.proj_context = nn.Sequential(
            nn.Conv3d(context_dim, context_dim, 1, bias=False),
            GroupNormFloat32(NORM_GROUPS, context_dim), nn.ReLU())
        self.depth_attn = DepthAttention(inner, context_dim, heads, dim_head)
        self.proj_out = nn.Sequential(
            GroupNormFloat32(NORM_GROUPS, inner), nn.ReLU(),
            nn.Conv2d(inner, inner, 3, padding=1, bias=False),
            GroupNormFloat32(NORM_GROUPS, inner), nn.ReLU(),
            nn.Conv2d(inner, dim, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, zero_volume_rows: int = 0) -> torch.Tensor:
        """The last `zero_volume_rows` rows of x have all-zero volume features, which `context`
        leaves out (it holds the first rows only; None when there are none)."""
        rows = x.shape[0] - zero_volume_rows
        updates = []
        if rows:
            attended = self.depth_attn(self.proj_in(x[:rows]), self.proj_context(context.to(x.dtype)))
            updates.append(self.proj_out(attended))
        if zero_volume_rows:
            updates.append(self.zero_volume_update(x).expand(zero_volume_rows, -1, -1, -1))
        return x + (updates[0] if len(updates) == 1 else torch.cat(updates, dim=0))

    def zero_volume_update(self, x: torch.Tensor) -> torch.Tensor:
        """What the block adds to any row whose volume features are all zero: (1, dim, H, W).

        proj_context turns zeros into the same vector at every depth (its GroupNorm's bias through
        ReLU), so all keys are equal, the softmax is uniform and the attention returns that value
        whatever the query. The reference gets the same from the full zero volume."""
        channels = self.proj_context[0].in_channels
        # Two voxels: GroupNorm refuses a single value per channel.
        context = self.proj_context(x.new_zeros(1, channels, 2, 1, 1))[:, :, :1]
        attended = self.depth_attn.to_out(self.depth_attn.to_v(context)[:, :, 0])  # (1, inner, 1, 1)
        return self.proj_out(attended.expand(1, -1, *x.shape[-2:]).contiguous())


def depth_transformer_for_volume(dim: int, volume_channels: int) -> DepthTransformer:
    """The reference's sizing: 4 heads of width C_vol/2 over a C_vol-channel volume."""
    return DepthTransformer(dim, heads=4, dim_head=volume_channels // 2, context_dim=volume_channels)
