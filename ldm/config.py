"""Model configs in the reference's format, turned into the SyncDreamer constructor's arguments.

A config is a YAML path, an OmegaConf node or a plain dict with `model.target`,
`model.params` (`view_num`, `image_size`, `unet_config`, ...) as in the reference's
`configs/syncdreamer.yaml`. The sizes the reference hard-codes may be given as
`model.params.clip_embed_dim`, `model.params.volume_dims` and `model.params.first_stage_ddconfig`
(as the golden miniatures do), and the CLIP image tower's sizes as a top-level `tiny_clip:`
block of OpenAI `CLIP(...)` arguments. Anything not given takes the full model's value.
Training-only keys (learning rate, scheduler, finetune flags, ...) are ignored.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ldm.modules.clip_vision import clip_encoder_kwargs

MODEL_TARGET_NAME = "SyncMultiviewDiffusion"
UNET_TARGET_NAME = "DepthWiseAttention"

FULL_CLIP_EMBED_DIM = 768
FULL_VOLUME_DIMS = (64, 128, 256, 512)
FULL_FIRST_STAGE_DDCONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [],
    "dropout": 0.0,
}
# CLIP ViT-L/14 at 224 px, the tower the reference loads from ViT-L-14.pt.
FULL_CLIP_VISION = {"width": 1024, "layers": 24, "heads": 16, "patch_size": 14, "image_resolution": 224}
UNET_KEYS = ("in_channels", "out_channels", "model_channels", "attention_resolutions",
             "num_res_blocks", "channel_mult", "num_heads", "num_head_channels",
             "transformer_depth", "context_dim", "volume_dims")


class ConfigError(ValueError):
    """A model config that cannot be built; the message says what to change."""


def read_config(config: str | os.PathLike | Mapping | DictConfig) -> dict[str, Any]:
    """The config as a plain dict, from a YAML path, an OmegaConf node or a dict."""
    if isinstance(config, (str, os.PathLike)):
        path = Path(config).expanduser()
        if not path.is_file():
            raise ConfigError(f"Model config {path} not found. Pass configs/syncdreamer.yaml "
                              f"(the official model) or configs/tiny.yaml (the miniature).")
        config = OmegaConf.load(path)
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config))
    raise ConfigError(f"A model config must be a path, an OmegaConf node or a dict, "
                      f"not {type(config).__name__}.")


def _target_name(section: Mapping) -> str | None:
    target = section.get("target")
    return None if target is None else str(target).rsplit(".", 1)[-1]


def model_kwargs(config: str | os.PathLike | Mapping | DictConfig) -> dict[str, Any]:
    """Keyword arguments of `ldm.models.syncdreamer.SyncDreamer` for this config."""
    config = read_config(config)
    model = config.get("model")
    if not isinstance(model, Mapping) or not isinstance(model.get("params"), Mapping):
        raise ConfigError("The model config has no `model.params` section; use the reference "
                          "format of configs/syncdreamer.yaml (model.target, model.params).")
    target = _target_name(model)
    if target not in (None, MODEL_TARGET_NAME):
        raise ConfigError(f"model.target is {model['target']}, but only SyncDreamer "
                          f"({MODEL_TARGET_NAME}) can be built here.")
    params = model["params"]
    unet_section = params.get("unet_config") or {}
    if _target_name(unet_section) not in (None, UNET_TARGET_NAME):
        raise ConfigError(f"model.params.unet_config.target is {unet_section['target']}, but "
                          f"SyncDreamer needs its {UNET_TARGET_NAME} UNet.")
    if not unet_section.get("params", {}).get("use_spatial_transformer", True):
        raise ConfigError("unet_config.params.use_spatial_transformer must be true for SyncDreamer.")

    clip_embed_dim = int(params.get("clip_embed_dim", FULL_CLIP_EMBED_DIM))
    volume_dims = [int(d) for d in params.get("volume_dims", FULL_VOLUME_DIMS)]
    unet = {k: v for k, v in (unet_section.get("params") or {}).items() if k in UNET_KEYS}
    unet.setdefault("volume_dims", volume_dims)
    unet.setdefault("context_dim", clip_embed_dim)
    if [int(d) for d in unet["volume_dims"]] != volume_dims:
        raise ConfigError(f"unet_config.params.volume_dims {unet['volume_dims']} must equal "
                          f"model.params.volume_dims {volume_dims}.")
    if int(unet["context_dim"]) != clip_embed_dim:
        raise ConfigError(f"unet_config.params.context_dim {unet['context_dim']} must equal the "
                          f"CLIP embedding size model.params.clip_embed_dim {clip_embed_dim}.")
    if len(volume_dims) != 4:
        raise ConfigError(f"volume_dims must have 4 entries (one per 3D U-Net level), got {volume_dims}.")

    if config.get("tiny_clip") is not None:
        clip = clip_encoder_kwargs(config["tiny_clip"])
    else:
        clip = dict(FULL_CLIP_VISION, embed_dim=clip_embed_dim)
    if clip["embed_dim"] != clip_embed_dim:
        raise ConfigError(f"The CLIP embedding size ({clip['embed_dim']}, tiny_clip.embed_dim) must "
                          f"equal model.params.clip_embed_dim ({clip_embed_dim}).")

    return {
        "view_num": int(params.get("view_num", 16)),
        "image_size": int(params.get("image_size", 256)),
        "clip_embed_dim": clip_embed_dim,
        "volume_dims": volume_dims,
        "first_stage_ddconfig": dict(params.get("first_stage_ddconfig") or FULL_FIRST_STAGE_DDCONFIG),
        "unet": unet,
        "clip": clip,
    }
