"""The SD-1.x spatial transformer: self-attention over pixels, cross-attention on the context
tokens, and a GEGLU feed-forward, between 1x1-conv projections.

Attention goes through `scaled_dot_product_attention`, which equals the reference's
einsum/softmax up to float rounding and uses fused kernels on a GPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.normalization import GroupNormFloat32, LayerNormFloat32


class CrossAttention(nn.Module):
    """Multi-head attention of `x` over `context` (over `x` itself when context is None)."""

    def __init__(self, query_dim: int, context_dim: int | None, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        # Index 1 of the reference's to_out is a Dropout(0): nothing to hold.
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim))

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, inner = t.shape
        return t.view(b, n, self.heads, inner // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is not None and context.shape[1] == 1:
            # A softmax over one key is exactly 1: every query gets that token's value. SyncDreamer's
            # cross-attention has one context token, so q, k and the attention are skipped.
            return self.to_out(self.to_v(context)).expand(-1, x.shape[1], -1)
        context = x if context is None else context
        q = self._split_heads(self.to_q(x))
        k = self._split_heads(self.to_k(context))
        v = self._split_heads(self.to_v(context))
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class GEGLU(nn.Module):
    """Linear to twice the width; the second half, through exact GELU, gates the first."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        # Keys net.0 (GEGLU) and net.2 (Linear); net.1 is the reference's Dropout(0).
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention, cross-attention and feed-forward, each with a residual."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int):
        super().__init__()
        self.attn1 = CrossAttention(dim, None, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head)
        self.norm1 = LayerNormFloat32(dim)
        self.norm2 = LayerNormFloat32(dim)
        self.norm3 = LayerNormFloat32(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Image features (B, C, H, W) as H*W tokens through transformer blocks, plus a residual."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int):
        super().__init__()
        inner = heads * dim_head
        self.norm = GroupNormFloat32(32, channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, context_dim) for _ in range(depth)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        tokens = self.proj_in(self.norm(x))
        inner = tokens.shape[1]
        tokens = tokens.flatten(2).transpose(1, 2)  # (B, H*W, inner)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        tokens = tokens.transpose(1, 2).reshape(b, inner, h, w)
        return x + self.proj_out(tokens)
