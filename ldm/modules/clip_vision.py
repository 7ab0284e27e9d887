"""The image tower of OpenAI CLIP (a ViT), with the preprocessing SyncDreamer applies before it.

Only the vision side exists here: the state dict keys are `model.visual.*`, matching the
reference checkpoint's `clip_image_encoder.model.visual.*`. The text-side leftovers the reference
keeps (token embedding, text positional embedding, ln_final, text_projection, logit_scale) are
never built; `ldm.checkpoint` drops them from files on purpose.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.normalization import LayerNormFloat32

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# OpenAI CLIP derives the number of vision heads from the width.
VISION_HEAD_WIDTH = 64


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class PackedSelfAttention(nn.Module):
    """Multi-head self-attention with packed q/k/v weights, named as in nn.MultiheadAttention."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"CLIP width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        # (B, N, 3*W) -> 3 x (B, heads, N, head_dim)
        q, k, v = qkv.reshape(b, n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, width))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = PackedSelfAttention(width, heads)
        self.ln_1 = LayerNormFloat32(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(4 * width, width)),
        ]))
        self.ln_2 = LayerNormFloat32(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    """Patchify, prepend the class token, transform; the class token's output is the embedding."""

    def __init__(self, image_resolution: int, patch_size: int, width: int, layers: int, heads: int,
                 embed_dim: int):
        super().__init__()
        if image_resolution % patch_size != 0:
            raise ValueError(f"CLIP image_resolution {image_resolution} is not a multiple of "
                             f"patch_size {patch_size}")
        tokens = (image_resolution // patch_size) ** 2 + 1
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(tokens, width))
        self.ln_pre = LayerNormFloat32(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNormFloat32(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixels.to(self.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)  # (B, grid*grid, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0, :]) @ self.proj


class _CLIPVisionOnly(nn.Module):
    """Holds `visual` so that keys read `model.visual.*` as in the reference's CLIP object."""

    def __init__(self, visual: VisionTransformer):
        super().__init__()
        self.visual = visual


class CLIPImageEncoder(nn.Module):
    """CLIP image embedding of a [-1, 1] image, as SyncDreamer's conditioning uses it.

    Defaults are ViT-L/14 at 224 pixels (embedding 768). `heads` defaults to width // 64, as
    OpenAI CLIP derives it.
    """

    def __init__(self, embed_dim: int = 768, width: int = 1024, layers: int = 24,
                 heads: int | None = None, patch_size: int = 14, image_resolution: int = 224):
        super().__init__()
        heads = heads if heads is not None else max(1, width // VISION_HEAD_WIDTH)
        self.image_resolution = image_resolution
        self.model = _CLIPVisionOnly(VisionTransformer(
            image_resolution=image_resolution, patch_size=patch_size, width=width, layers=layers,
            heads=heads, embed_dim=embed_dim))
        # Constants, not weights: not stored in checkpoints (the reference has them non-persistent).
        self.register_buffer("mean", torch.empty(3), persistent=False)
        self.register_buffer("std", torch.empty(3), persistent=False)
        self.reset_nonpersistent_buffers()

    def reset_nonpersistent_buffers(self, device: torch.device | str | None = None) -> None:
        """(Re)create the mean/std constants, e.g. after the model was filled from the meta device."""
        if device is None:
            device = self.model.visual.conv1.weight.device
        self.mean = torch.tensor(CLIP_MEAN, dtype=torch.float32, device=device)
        self.std = torch.tensor(CLIP_STD, dtype=torch.float32, device=device)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """[-1, 1] NCHW image -> CLIP input (B, 3, R, R), float32, as the reference computes it."""
        x = F.interpolate(image.float(), size=(self.image_resolution, self.image_resolution),
                          mode="bicubic", align_corners=True, antialias=False)
        x = (x + 1.0) / 2.0
        mean = self.mean.float().view(1, 3, 1, 1)
        std = self.std.float().view(1, 3, 1, 1)
        return (x - mean) / std

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """[-1, 1] NCHW image -> embedding (B, 1, embed_dim) in the tower's dtype."""
        return self.model.visual(self.preprocess(image)).unsqueeze(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode(image)


def clip_encoder_kwargs(openai_clip_config: Mapping) -> dict:
    """Constructor kwargs of CLIPImageEncoder from OpenAI `CLIP(...)` arguments.

    Accepts the golden `tiny_clip:` block (embed_dim, image_resolution, vision_layers,
    vision_width, vision_patch_size, plus text-side keys that are ignored).
    """
    layers = openai_clip_config["vision_layers"]
    if isinstance(layers, (list, tuple)) or hasattr(layers, "__len__"):
        raise ValueError("vision_layers is a list, i.e. a ResNet CLIP; only ViT image towers are "
                         "supported")
    width = int(openai_clip_config["vision_width"])
    return {
        "embed_dim": int(openai_clip_config["embed_dim"]),
        "width": width,
        "layers": int(layers),
        "heads": max(1, width // VISION_HEAD_WIDTH),
        "patch_size": int(openai_clip_config["vision_patch_size"]),
        "image_resolution": int(openai_clip_config["image_resolution"]),
    }
