"""Object masks for the server and the command line: masks made elsewhere (a folder of PNGs), or
background removal (rembg) where it and its model file are installed. Server side only: inside
Blender the silhouettes come from alpha or the white background (proxy_mesh/silhouettes.py).

It lives in generation/ beside segmentation.py (rembg), above view_set/, so the set writer of the
pipeline (`write_mesh_if_asked`) chooses the masks and hands them down to view_set/mesh.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .. import protocol
from ..errors import InputError, SetupError
from ..view_set.mesh import write_requested_meshes
from . import segmentation

# How the command line finds the silhouettes when no masks folder is given.
SILHOUETTE_METHODS = ("auto", "rembg", "white")


def read_masks(folder, count: int = protocol.VIEW_COUNT, size=None) -> list:
    """(H, W) bool masks from `folder`: mask_00.png ... or view_00.png ... (white or opaque =
    object: a mask's alpha channel when it has one, else its grey level above half)."""
    folder = Path(folder).expanduser()
    for pattern in ("mask_{:02d}.png", "view_{:02d}.png"):
        paths = [folder / pattern.format(index) for index in range(count)]
        if all(path.is_file() for path in paths):
            break
    else:
        raise InputError(f"{folder} holds no masks: give a folder of mask_00.png ... mask_{count - 1:02d}.png "
                         "(white or opaque where the object is), one per view", code=protocol.ErrorCode.BAD_PARAMETER)
    masks = []
    for path in paths:
        with Image.open(path) as image:
            array = np.asarray(image.convert("LA" if "A" in image.getbands() else "L"))
        mask = array[..., 1] > 127 if array.ndim == 3 and float(array[..., 1].min()) < 128 else (
            (array[..., 0] if array.ndim == 3 else array) > 127)
        if size is not None and mask.shape != (size[1], size[0]):
            raise InputError(f"{path.name} is {mask.shape[1]}x{mask.shape[0]} pixels; the views are "
                             f"{size[0]}x{size[1]}", code=protocol.ErrorCode.BAD_PARAMETER)
        masks.append(mask)
    return masks


def rembg_masks(images, rembg_model=None) -> list:
    """(H, W) bool masks by background removal (rembg), or SetupError when it or its model file
    is missing (segmentation.py says where to put it)."""
    masks = []
    for image in images:
        array = np.asarray(image)
        cut = segmentation.segment_foreground(Image.fromarray(array[..., :3]), rembg_model=rembg_model)
        masks.append(np.asarray(cut)[..., 3] > 127)
    return masks


def choose_masks(images, method: str = "auto", masks_folder=None, rembg_model=None):
    """The masks to build from (None: each view's alpha or its white background).

    masks_folder wins; "rembg" needs background removal; "auto" uses it only where rembg and its
    model file are installed and the views have no transparency; "white" never does."""
    if method not in SILHOUETTE_METHODS:
        raise InputError(f"unknown silhouette method {method!r}; use one of {', '.join(SILHOUETTE_METHODS)}",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    if masks_folder is not None:
        height, width = np.asarray(images[0]).shape[:2]
        return read_masks(masks_folder, len(images), (width, height))
    if method == "white":
        return None
    has_alpha = all(np.asarray(image).shape[2] == 4 and int(np.asarray(image)[..., 3].min()) < 128 for image in images)
    if method == "auto" and has_alpha:
        return None
    try:
        return rembg_masks(images, rembg_model)
    except SetupError:
        if method == "rembg":
            raise
        return None


def write_mesh_if_asked(folder, views, request) -> None:
    """The pipeline's set writer: mesh.ply and/or asset.glb into the set when the job asked, built
    from the masks `choose_masks` picks for the views (rembg where installed, else the white
    background)."""
    options = getattr(request, "options", None) or {}
    if options.get("mesh") or options.get("mesh_asset"):
        write_requested_meshes(folder, options, masks=choose_masks(views))
