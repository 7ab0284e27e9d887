"""One generation request: the input image's bytes and the job parameters of the protocol.

The server checks the parameters again (inference_server/generation/params.py is the authority); the
checks here only catch, before anything is sent, what the panel's widgets cannot prevent.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from .bundled import protocol

BACKGROUND_CHOICES = protocol.BACKGROUND_CHOICES
MAX_SEED = 2**31 - 1  # Blender's IntProperty is 32-bit (the protocol allows more)
# Formats that the server's Pillow reads; Blender can hold others (EXR, HDR) that it cannot.
READABLE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
# What fits into a server's default body limit once base64 has made it 4/3 larger.
MAX_IMAGE_BYTES = protocol.DEFAULT_MAX_IMAGE_BYTES


@dataclass(frozen=True)
class JobRequest:
    image_bytes: bytes
    filename: str
    params: dict


def new_seed() -> int:
    return random.SystemRandom().randint(0, MAX_SEED)


def build_params(*, elevation: float, crop_size: int, cfg_scale: float, steps: int, seed: int,
                 samples: int, batch_views: int, background: str, output_dir: str | None = None) -> dict:
    """The protocol's `params` object; raises ValueError saying which value to change."""
    background = background.lower()
    if background not in BACKGROUND_CHOICES:
        raise ValueError(f"Background must be one of {', '.join(BACKGROUND_CHOICES)}, not {background!r}.")
    low, high = protocol.CROP_SIZE_RANGE
    if crop_size != protocol.NO_CROP and not low <= crop_size <= high:
        raise ValueError(f"Crop size must be {protocol.NO_CROP} (no crop) or between {low} and {high}, "
                         f"not {crop_size}; 200 suits most objects.")
    params = {"elevation": float(elevation), "crop_size": int(crop_size), "cfg_scale": float(cfg_scale),
              "steps": int(steps), "seed": int(seed), "samples": int(samples), "background": background}
    # 0 (automatic) is left out: the server picks for its memory mode, and a server older than
    # the automatic choice uses its own default instead of refusing 0.
    if batch_views:
        params["batch_views"] = int(batch_views)
    if output_dir:
        params[protocol.OUTPUT_DIR_PARAM] = str(output_dir)
    return params


def read_image(path: str | os.PathLike) -> tuple[bytes, str]:
    """(bytes, file name) of an input image file; ValueError with what to do when it is unusable."""
    path = Path(path).expanduser()
    if not str(path) or not path.name:
        raise ValueError("No input image chosen: pick an image file or an image already in Blender "
                         "in the Glimpse3D panel.")
    if not path.is_file():
        raise ValueError(f"The input image {path} does not exist; choose another file.")
    if path.suffix.lower() not in READABLE_SUFFIXES:
        raise ValueError(f"The input image {path.name} is not a format the server reads; "
                         f"save it as PNG (with transparency if you have it) and choose that.")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"The input image {path.name} is {size / 2**20:.1f} MiB; scale it down below "
                         f"{MAX_IMAGE_BYTES / 2**20:.1f} MiB (the model sees 256x256 pixels anyway).")
    return path.read_bytes(), path.name
