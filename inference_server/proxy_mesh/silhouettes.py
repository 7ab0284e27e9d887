"""Silhouettes of the object in each view, and their signed distance images.

A silhouette comes from, in this order: a mask given by the caller (the server's background
removal), the view's alpha channel when it has real transparency, else a near-white threshold
(SyncDreamer paints the background white). Only numpy: this runs inside Blender too.
"""
from __future__ import annotations

import numpy as np

# A pixel is background when its darkest channel is brighter than this (0..1): SyncDreamer's
# white is rarely exactly 1.0, and a slightly grey floor shadow should stay background.
NEAR_WHITE = 0.92
# Exact Euclidean distances are computed up to this many pixels; farther ones are clamped,
# which only makes the coarse-to-fine search visit a few more cells than needed.
DISTANCE_BAND_PX = 24


def as_float_image(image) -> np.ndarray:
    """(H, W, C) float32 in 0..1 from uint8 / uint16 / float arrays with 3 or 4 channels."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a view must be an (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def silhouette(image: np.ndarray, mask=None) -> np.ndarray:
    """(H, W) bool, True on the object. `image` as from `as_float_image`; `mask` (H, W) any
    numeric or bool array (non-zero / above half = object) wins when given."""
    height, width = image.shape[:2]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:2] != (height, width):
            raise ValueError(f"a mask must have its view's size {width}x{height}, got {mask.shape[1]}x{mask.shape[0]}")
        if mask.ndim == 3:
            mask = mask[..., -1] if mask.shape[2] in (2, 4) else mask[..., 0]
        if mask.dtype == bool:
            return mask.copy()
        scale = 255.0 if mask.dtype == np.uint8 else (65535.0 if mask.dtype == np.uint16 else 1.0)
        return mask.astype(np.float32) / scale > 0.5
    if image.shape[2] == 4 and float(image[..., 3].min()) < 0.5:
        return image[..., 3] > 0.5
    return image[..., :3].min(axis=2) < NEAR_WHITE


def _squared_distance_to(targets: np.ndarray, band: int) -> np.ndarray:
    """Squared Euclidean distance (in pixels) of every pixel to the nearest True pixel of
    `targets`, exact up to `band` and clamped to band**2 + 1 beyond. Separable: first along
    columns, then along rows, each a minimum over offsets -band..band."""
    far = np.float32(band * band + 1)
    height, width = targets.shape
    column = np.where(targets, np.float32(0.0), far)
    padded = np.full((height + 2 * band, width), far, dtype=np.float32)
    padded[band:band + height] = column
    for offset in range(1, band + 1):
        step = np.float32(offset * offset)
        np.minimum(column, padded[band - offset:band - offset + height] + step, out=column)
        np.minimum(column, padded[band + offset:band + offset + height] + step, out=column)
    padded = np.full((height, width + 2 * band), far, dtype=np.float32)
    padded[:, band:band + width] = column
    result = column.copy()
    for offset in range(1, band + 1):
        step = np.float32(offset * offset)
        np.minimum(result, padded[:, band - offset:band - offset + width] + step, out=result)
        np.minimum(result, padded[:, band + offset:band + offset + width] + step, out=result)
    return np.minimum(result, far)


def signed_distance(mask: np.ndarray, band: int = DISTANCE_BAND_PX) -> np.ndarray:
    """(H, W) float32 signed distance in pixels to the silhouette's outline: negative inside,
    positive outside, zero on the boundary between an inside and an outside pixel."""
    outside = np.sqrt(_squared_distance_to(mask, band))  # 0 on the object
    inside = np.sqrt(_squared_distance_to(~mask, band))  # 0 on the background
    # the outline runs half way between neighbouring inside and outside pixel centres
    return np.where(mask, 0.5 - inside, outside - 0.5).astype(np.float32)
