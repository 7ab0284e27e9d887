"""The SD-1.x KL-f8 variational autoencoder that maps 256x256 images to 4x32x32 latents.

Parameter names follow the reference checkpoint (`first_stage_model.*` inside the full model), so
the official weights load without renaming. The module works in unscaled latent space: callers
multiply an encoded sample by 0.18215 and divide by it before `decode`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.normalization import GroupNormFloat32
from ldm.modules.upsample import Upsample

LOGVAR_MIN = -30.0
LOGVAR_MAX = 20.0


def _norm(channels: int) -> nn.GroupNorm:
    return GroupNormFloat32(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """Two norm-swish-conv stages with a residual; a 1x1 conv matches channels when they change."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.nin_shortcut = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels, with 1x1-conv projections and a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)
        # (B, C, H, W) -> (B, 1 head, H*W tokens, C)
        q, k, v = (proj(normed).reshape(b, 1, c, h * w).transpose(2, 3)
                   for proj in (self.q, self.k, self.v))
        attended = F.scaled_dot_product_attention(q, k, v)  # scale = C ** -0.5
        attended = attended.transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Halves the resolution: pad right and bottom by one pixel, then a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class _MidBlock(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels)
        self.block_2 = ResnetBlock(channels, channels, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution level: residual blocks, optional attention after each, optional resampler."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn) > 0:
                x = self.attn[i](x)
        return x


class Encoder(nn.Module):
    def __init__(self, *, ch: int, ch_mult, num_res_blocks: int, attn_resolutions, in_channels: int,
                 resolution: int, z_channels: int, double_z: bool = True, dropout: float = 0.0,
                 **_unused):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        levels = []
        current_res = resolution
        block_in = ch
        for level_index, mult in enumerate(ch_mult):
            block_out = ch * mult
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if current_res in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _Level(blocks, attns)
            if level_index != len(ch_mult) - 1:
                level.downsample = Downsample(block_in)
                current_res //= 2
            levels.append(level)
        self.down = nn.ModuleList(levels)
        self.mid = _MidBlock(block_in, dropout)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level.run_blocks(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, *, ch: int, out_ch: int, ch_mult, num_res_blocks: int, attn_resolutions,
                 resolution: int, z_channels: int, dropout: float = 0.0, **_unused):
        super().__init__()
        block_in = ch * ch_mult[-1]
        current_res = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = _MidBlock(block_in, dropout)
        # Built from the coarsest level down; stored so that up[i] is level i, as in the checkpoint.
        levels: list[_Level] = []
        for level_index in reversed(range(len(ch_mult))):
            block_out = ch * ch_mult[level_index]
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out, dropout))
                block_in = block_out
                if current_res in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _Level(blocks, attns)
            if level_index != 0:
                level.upsample = Upsample(block_in)
                current_res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level.run_blocks(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """KL autoencoder: `encode` gives the posterior (mean, logvar), `decode` maps latents to images.

    `ddconfig` holds the reference keys (ch, ch_mult, num_res_blocks, attn_resolutions, z_channels,
    double_z, in_channels, out_ch, resolution, dropout); a dict or an OmegaConf node.
    """

    def __init__(self, ddconfig: Mapping, embed_dim: int = 4):
        super().__init__()
        config = {key: ddconfig[key] for key in ddconfig}
        config["ch_mult"] = [int(m) for m in config["ch_mult"]]
        config["attn_resolutions"] = [int(r) for r in config.get("attn_resolutions", [])]
        if not config.get("double_z", True):
            raise ValueError("AutoencoderKL needs double_z: true (the encoder outputs mean and logvar)")
        z_channels = int(config["z_channels"])
        self.encoder = Encoder(**config)
        self.decoder = Decoder(**config)
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image in [-1, 1] (B, 3, H, W) -> posterior mean and clamped logvar, each (B, 4, H/8, W/8)."""
        moments = self.quant_conv(self.encoder(x))
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent (B, 4, h, w) -> image (B, 3, 8h, 8w), not clamped."""
        return self.decoder(self.post_quant_conv(z))
