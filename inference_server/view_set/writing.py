"""The output folder: one complete set of sixteen views with its cameras (docs/contracts.md §2).

`write_set_files` writes the files of one set into a folder; generation/pipeline.py calls it
inside a staged folder (staging.py), renamed to its final name only when every file of every
sample is there, so whoever watches the output directory never sees a half-written set.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .. import cameras
from ..protocol import (
    CAMERAS_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    GRID_FILE,
    INPUT_FILE,
    SET_FILES,  # noqa: F401 (re-exported for callers of this module)
    TRANSFORMS_FILE,
    VIEW_FILES,
    VIEW_SIZE,
)

GRID_COLUMNS = 4
assert VIEW_SIZE == cameras.IMAGE_SIZE and VIEW_FILES == tuple(map(cameras.view_file_name, range(cameras.VIEW_COUNT)))

RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: these views come from a model without trained weights and show noise, "
    "not your object. Give the server a SyncDreamer checkpoint to get real views."
)

# what cameras.json must say about the model and the generation (docs/contracts.md §2)
MODEL_KEYS = ("name", "config", "checkpoint", "checkpoint_sha256", "random_weights")
GENERATION_KEYS = ("seed", "steps", "cfg_scale", "elevation_deg", "crop_size", "sampler", "eta",
                   "precision", "device", "batch_view_num", "sample_index", "sample_count",
                   "input_file", "background", "created")
METADATA_KEYS = ("model", "generation", "warning")


# ---- images -------------------------------------------------------------------------------

def model_output_to_views(decoded) -> list:
    """PIL RGB views from one sample of decoded model output, (16, 3, H, W) floats in about [-1, 1].

    As the reference's generate.py: clamp to [-1, 1], (x + 1) / 2, times 255, truncate to uint8.
    Accepts a numpy array or anything numpy can read (a CPU tensor).
    """
    array = np.asarray(decoded, dtype=np.float32)
    if array.ndim != 4 or array.shape[0] != cameras.VIEW_COUNT or array.shape[1] != 3:
        raise ValueError(f"expected decoded views of shape (16, 3, H, W), got {array.shape}")
    if not np.isfinite(array).all():
        raise RuntimeError("the model produced NaN or infinite values; this usually means half precision "
                           "overflowed: run again with float32 precision")
    array = (np.clip(array, -1.0, 1.0) + 1.0) * 0.5
    pixels = (array.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
    return [Image.fromarray(view) for view in pixels]


def _check_views(views) -> list:
    views = list(views)
    if len(views) != cameras.VIEW_COUNT:
        raise ValueError(f"a view set has {cameras.VIEW_COUNT} views, got {len(views)}")
    for index, view in enumerate(views):
        _check_square_rgb(view, f"view {index}")
    return views


def _check_square_rgb(image, what: str) -> None:
    if not isinstance(image, Image.Image):
        raise ValueError(f"{what} must be a PIL image, got {type(image).__name__}")
    if image.mode != "RGB" or image.size != (VIEW_SIZE, VIEW_SIZE):
        raise ValueError(f"{what} must be RGB {VIEW_SIZE}x{VIEW_SIZE}, got {image.mode} "
                         f"{image.size[0]}x{image.size[1]}")


def make_grid(views, columns: int = GRID_COLUMNS) -> Image.Image:
    """Contact sheet of the views, row-major, view 0 top left (4x4 of 256 px = 1024x1024)."""
    views = _check_views(views)
    rows = -(-len(views) // columns)
    grid = Image.new("RGB", (columns * VIEW_SIZE, rows * VIEW_SIZE), (255, 255, 255))
    for index, view in enumerate(views):
        row, column = divmod(index, columns)
        grid.paste(view, (column * VIEW_SIZE, row * VIEW_SIZE))
    return grid


# ---- cameras.json ---------------------------------------------------------------------------

def build_cameras_json(metadata: dict) -> dict:
    """The content of cameras.json from `metadata` = {"model": {...}, "generation": {...}, "warning": ...}.

    `model` and `generation` must hold at least the contract's keys (extra keys are kept);
    `generation["created"]` defaults to now (UTC). A set from random weights always carries
    the RANDOM WEIGHTS warning.
    """
    unknown = sorted(set(metadata) - set(METADATA_KEYS))
    if unknown:
        raise ValueError(f"unknown metadata key(s) {unknown}; cameras.json takes {list(METADATA_KEYS)}")
    model = dict(metadata.get("model") or {})
    generation = dict(metadata.get("generation") or {})
    generation.setdefault("created", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    for what, given, required in (("model", model, MODEL_KEYS), ("generation", generation, GENERATION_KEYS)):
        missing = [key for key in required if key not in given]
        if missing:
            raise ValueError(f"metadata[{what!r}] lacks {missing} (docs/contracts.md §2)")
    if not isinstance(model["random_weights"], bool):
        raise ValueError(f"metadata['model']['random_weights'] must be true or false, got {model['random_weights']!r}")
    warning = metadata.get("warning")
    if model["random_weights"] and not (warning or "").startswith("RANDOM WEIGHTS"):
        warning = RANDOM_WEIGHTS_WARNING + (f" {warning}" if warning else "")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "warning": warning,
        "model": model,
        "generation": generation,
        "image_size": [VIEW_SIZE, VIEW_SIZE],
        "views": cameras.cameras_json_views(VIEW_FILES),
    }


def _write_json(path: Path, content: dict) -> None:
    # allow_nan=False: a NaN in the metadata is a bug, and other tools cannot read it
    path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="utf-8")


# ---- writing a set ----------------------------------------------------------------------------

def write_set_files(folder, views, input_image: Image.Image, metadata: dict) -> None:
    """Write the files of one view set into the existing, empty `folder` (not atomic by itself).

    `views`: 16 PIL RGB 256x256 images (view i at azimuth 22.5 * i); `input_image`: the
    preprocessed 256x256 RGB input; `metadata`: see `build_cameras_json`.
    """
    folder = Path(folder)
    views = _check_views(views)
    _check_square_rgb(input_image, "the input image")
    cameras_content = build_cameras_json(metadata)
    for name, view in zip(VIEW_FILES, views):
        view.save(folder / name, format="PNG")
    input_image.save(folder / INPUT_FILE, format="PNG")
    make_grid(views).save(folder / GRID_FILE, format="PNG")
    _write_json(folder / TRANSFORMS_FILE, cameras.transforms_json(VIEW_FILES))
    _write_json(folder / CAMERAS_FILE, cameras_content)  # last: its presence marks a set
