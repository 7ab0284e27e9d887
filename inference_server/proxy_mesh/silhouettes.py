"""Silhouettes of the object in each view, and their signed distance images.

A silhouette comes from, in this order: a mask given by the caller (the server's background
removal, or masks made elsewhere), the view's alpha channel when it has real transparency, else
the white background: the near-white region connected to the image's border. SyncDreamer paints
the background white (not exactly 255, hence a tolerance), so a near-white part of the object
(the lit side of a white mug) stays object unless it touches the background with no darker
outline between, and a near-white hole inside an outline is object unless it reaches the border.
Only numpy: this runs inside Blender too.
"""
from __future__ import annotations

import numpy as np

# The border must be at least this bright (darkest channel, 0..1) to count as a white background.
NEAR_WHITE = 0.92
# A pixel can be background when its darkest channel is within this of the background's level
# (the median darkest channel along the border): generated whites vary by a few levels.
BACKGROUND_TOLERANCE = 0.02
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


def silhouette(image: np.ndarray, mask=None, tolerance: float = BACKGROUND_TOLERANCE) -> np.ndarray:
    """(H, W) bool, True on the object. `image` as from `as_float_image`; `mask` (H, W) any
    numeric or bool array (non-zero / above half = object) wins when given; `tolerance` (0..1):
    how far below the background's white a pixel may be and still count as background."""
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
    return ~white_background(image, tolerance)


def white_background(image: np.ndarray, tolerance: float = BACKGROUND_TOLERANCE) -> np.ndarray:
    """(H, W) bool: the near-white pixels connected to the image's border (4-neighbours, so a
    background never leaks through a diagonal gap in an outline). Near-white means a darkest
    channel within `tolerance` of the border's level; a border darker than NEAR_WHITE is no
    white background, and then nothing is."""
    darkest = image[..., :3].min(axis=2)
    border = np.concatenate([darkest[0], darkest[-1], darkest[1:-1, 0], darkest[1:-1, -1]])
    level = float(np.median(border))
    if level < NEAR_WHITE:
        return np.zeros(darkest.shape, dtype=bool)
    candidate = darkest >= level - float(tolerance)
    reached = np.zeros_like(candidate)
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        reached[edge] = candidate[edge]
    count = -1
    while int(reached.sum()) != count:  # a few sweeps: each follows a path through one more turn
        count = int(reached.sum())
        reached = _spread_along_rows(candidate, reached)
        reached = _spread_along_rows(candidate.T, reached.T).T
    return reached


def _spread_along_rows(candidate: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """`reached` grown along each row: a run of candidate pixels with one reached pixel is
    reached whole."""
    before = np.zeros_like(candidate)
    before[:, 1:] = candidate[:, :-1]
    runs = np.cumsum(candidate & ~before).reshape(candidate.shape) * candidate  # run number, 0 = none
    hit = np.zeros(int(runs.max()) + 1, dtype=bool)
    hit[runs[reached & candidate]] = True
    hit[0] = False
    return hit[runs]


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
