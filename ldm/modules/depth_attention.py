"""SyncDreamer's depth-wise attention: every UNet pixel attends over the depth samples of its
own frustum column of the volume features (facts §3.7, "Added depth-wise blocks")."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.normalization import GroupNormFloat32

NORM_GROUPS = 8


def attend_over_depth(q: torch.Tensor, context: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                      heads: int, fused: bool) -> torch.Tensor:
    """Per pixel and head: softmax over D of q.k_d / sqrt(d_head), weighting v_d, where k_d = W_k c_d
    and v_d = W_v c_d are bias-free 1x1x1 projections of the volume features c at depth d.

    Computed without k and v, by associativity, per head h: q_h.k_d = (W_k,h^T q_h).c_d and
    sum_d a_d v_d = W_v,h (sum_d a_d c_d). The products are then C wide instead of inner = 2C
    wide, and the two inner-wide volumes k and v never exist.

    q (b, inner, H, W), channels head-major; context (b, C, D, H, W); w_k, w_v (inner, C).
    Returns (b, inner, H, W). `fused` runs the attention as scaled_dot_product_attention, each
    pixel a batch entry whose `heads` queries share its D keys (fused kernels on a GPU);
    otherwise as einsums, faster on a CPU.
    """
    b, channels, depth, h, w = context.shape
    inner = q.shape[1]
    dim_head = inner // heads
    w_k, w_v = w_k.reshape(heads, dim_head, channels), w_v.reshape(heads, dim_head, channels)
    q_c = torch.einsum("bhjxy,hjc->bhcxy", q.reshape(b, heads, dim_head, h, w), w_k)
    if fused:
        query = q_c.permute(0, 3, 4, 1, 2).reshape(b * h * w, 1, heads, channels)
        keys = context.permute(0, 3, 4, 2, 1).reshape(b * h * w, 1, depth, channels)
        mixed = F.scaled_dot_product_attention(query, keys, keys, scale=dim_head ** -0.5)
        out = torch.einsum("bxyhc,hjc->bhjxy", mixed.view(b, h, w, heads, channels), w_v)
    else:
        weights = (torch.einsum("bhcxy,bcdxy->bhdxy", q_c, context) * dim_head ** -0.5).softmax(dim=2)
        mixed = torch.einsum("bhdxy,bcdxy->bhcxy", weights, context)
        out = torch.einsum("bhcxy,hjc->bhjxy", mixed, w_v)
    return out.reshape(b, inner, h, w)


class DepthAttention(nn.Module):
    """Query (b, inner, H, W) over keys/values (b, inner, D, H, W): softmax along D per pixel."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Conv2d(query_dim, inner, 1, bias=False)
        # No biases: attend_over_depth folds these two into the query and the output.
        self.to_k = nn.Conv3d(context_dim, inner, 1, bias=False)
        self.to_v = nn.Conv3d(context_dim, inner, 1, bias=False)
        self.to_out = nn.Conv2d(inner, query_dim, 1, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        w_k = self.to_k.weight.flatten(1)   # (inner, C)
        w_v = self.to_v.weight.flatten(1)
        out = attend_over_depth(self.to_q(x), context, w_k, w_v, self.heads, fused=x.device.type != "cpu")
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
