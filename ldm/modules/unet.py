"""The SD-1.x UNet (zero123 layout, keys `model.diffusion_model.*`) with SyncDreamer's
depth-wise attention after the middle block and after the decoder blocks (facts §3.7).

The layout is derived from the config (model_channels, channel_mult, num_res_blocks,
attention_resolutions, heads), so miniatures with other sizes build the same way.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ldm.modules.attention import SpatialTransformer
from ldm.modules.normalization import GroupNormFloat32
from ldm.modules.upsample import Upsample
from ldm.modules.depth_attention import depth_transformer_for_volume
from ldm.modules.embeddings import time_mlp, timestep_embedding


def _norm(channels: int) -> nn.GroupNorm:
    return GroupNormFloat32(32, channels, eps=1e-5)


class ResBlock(nn.Module):
    """norm-SiLU-conv, plus a projection of the time embedding, norm-SiLU-conv, residual."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int):
        super().__init__()
        self.in_layers = nn.Sequential(_norm(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        # Index 2 is the reference's Dropout(0).
        self.out_layers = nn.Sequential(_norm(out_channels), nn.SiLU(), nn.Identity(),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if channels == out_channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class UNetBlock(nn.ModuleList):
    """Layers run in order; each gets what it needs (time embedding, context, or nothing)."""

    def forward(self, h: torch.Tensor, emb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                h = layer(h, emb)
            elif isinstance(layer, SpatialTransformer):
                h = layer(h, context)
            else:
                h = layer(h)
        return h


class DepthWiseAttentionUNet(nn.Module):
    """eps = UNet(x (B, in_ch, h, w), t (B,), context (B, tokens, context_dim), volume features).

    `volume_feats` maps a feature-map width to the frustum features (B, C_vol, D, width, width)
    the depth-wise blocks attend to; `volume_dims[level]` is C_vol at UNet level `level`.
    """

    def __init__(self, *, in_channels: int = 8, out_channels: int = 4, model_channels: int = 320,
                 attention_resolutions: Sequence[int] = (4, 2, 1), num_res_blocks: int = 2,
                 channel_mult: Sequence[int] = (1, 2, 4, 4), num_heads: int = 8,
                 num_head_channels: int = -1, transformer_depth: int = 1, context_dim: int = 768,
                 volume_dims: Sequence[int] = (64, 128, 256, 512)):
        super().__init__()
        levels = len(channel_mult)
        if len(volume_dims) != levels:
            raise ValueError(f"unet volume_dims {list(volume_dims)} needs one entry per UNet level "
                             f"({levels}, from channel_mult {list(channel_mult)})")
        self.model_channels = model_channels
        emb_channels = model_channels * 4
        self.time_embed = time_mlp(model_channels, emb_channels)

        def transformer(ch: int) -> SpatialTransformer:
            if num_head_channels == -1:
                heads, dim_head = num_heads, ch // num_heads
            else:
                heads, dim_head = ch // num_head_channels, num_head_channels
            return SpatialTransformer(ch, heads, dim_head, transformer_depth, context_dim)

        self.input_blocks = nn.ModuleList([UNetBlock([nn.Conv2d(in_channels, model_channels, 3, padding=1)])])
        skip_channels = [model_channels]
        ch, ds = model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_channels, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                self.input_blocks.append(UNetBlock(layers))
                skip_channels.append(ch)
            if level != levels - 1:
                self.input_blocks.append(UNetBlock([Downsample(ch)]))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = UNetBlock([ResBlock(ch, emb_channels, ch), transformer(ch),
                                       ResBlock(ch, emb_channels, ch)])
        self.middle_conditions = depth_transformer_for_volume(ch, volume_dims[levels - 1])

        # Depth-wise blocks follow every decoder block except those of the lowest level;
        # each attends to the volume of the level its output lives at (after any upsampling).
        self.output_blocks = nn.ModuleList()
        self.output_conditions = nn.ModuleList()
        self.output_block_to_condition: dict[int, int] = {}
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_channels, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_resolutions:
                    layers.append(transformer(ch))
                level_after = level
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                    level_after = level - 1
                if level != levels - 1:
                    self.output_block_to_condition[len(self.output_blocks)] = len(self.output_conditions)
                    self.output_conditions.append(depth_transformer_for_volume(ch, volume_dims[level_after]))
                self.output_blocks.append(UNetBlock(layers))

        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(model_channels, out_channels, 3, padding=1))
        self.channels_last = False  # ldm.speed: NHWC activations for NHWC weights
        self.cuda_graphs = False    # ldm.speed: compiled with CUDA graphs ("reduce-overhead")

    @property
    def dtype(self) -> torch.dtype:
        return self.out[2].weight.dtype

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                volume_feats: Mapping[int, torch.Tensor], zero_volume_rows: int = 0) -> torch.Tensor:
        """The last `zero_volume_rows` rows of x have all-zero volume features (the unconditional
        guidance branch); `volume_feats` holds the other rows only."""
        dtype = self.dtype
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(dtype))
        context = context.to(dtype)
        h = x.to(dtype)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        skips = []
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
        h = self.middle_block(h, emb, context)
        h = self.middle_conditions(h, volume_feats.get(h.shape[-1]), zero_volume_rows)
        for index, block in enumerate(self.output_blocks):
            h = block(torch.cat([h, skips.pop()], dim=1), emb, context)
            condition = self.output_block_to_condition.get(index)
            if condition is not None:
                h = self.output_conditions[condition](h, volume_feats.get(h.shape[-1]), zero_volume_rows)
        return self.out(h).float()
