"""The input image as a file: a chosen path, or an image datablock (written to a PNG in the
extension's user folder when it has no usable file of its own)."""
import os
import re
from pathlib import Path

import bpy

from ..core.job_request import READABLE_SUFFIXES
from .settings import user_folder


def image_file_path(image: bpy.types.Image, folder: str) -> Path:
    """A file the server can read that holds `image`'s pixels; ValueError when impossible."""
    if image.source not in {"FILE", "GENERATED"}:
        raise ValueError(f"The image '{image.name}' is a {image.source.lower()}, not a still image; "
                         "choose a still image or a file.")
    source = bpy.path.abspath(image.filepath, library=image.library) if image.filepath else ""
    if (image.source == "FILE" and not image.packed_file and not image.is_dirty and source
            and os.path.isfile(source) and Path(source).suffix.lower() in READABLE_SUFFIXES):
        return Path(source)  # send the original file untouched
    if not image.has_data and image.source == "FILE" and not image.packed_file:
        raise ValueError(f"The image '{image.name}' has no pixels (its file {source or '?'} is "
                         "missing); reload or replace it.")
    target = Path(folder) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", image.name).strip("._") or "image")
    target = target.with_suffix(".png")
    previous_format = image.file_format
    try:
        # A copy in PNG: the datablock keeps its own path and format.
        image.file_format = "PNG"
        image.save(filepath=str(target), save_copy=True)
    except RuntimeError as exc:
        raise ValueError(f"The image '{image.name}' could not be written as PNG ({exc}); save it "
                         "to a file and choose that file.") from None
    finally:
        if image.file_format != previous_format:
            image.file_format = previous_format
    return target


def input_file(image, filepath: str) -> Path:
    """The file to send for the chosen input: the image datablock when there is one (copied into
    the extension's `inputs` folder when it has no usable file), else the chosen path."""
    if image is not None:
        return image_file_path(image, user_folder("inputs"))
    return Path(bpy.path.abspath(filepath))
