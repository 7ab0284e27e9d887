"""Reading the user's image: checks that say what is wrong, EXIF orientation, 8-bit RGB(A) out.

Everything after this module can rely on an upright, fully loaded PIL image in mode RGB or
RGBA with 8 bits per channel.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import InputError

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 megapixels: far more than the 256 px the model sees
MAX_SIDE = 16384
MIN_SIDE = 16
# what we open (Pillow reads more, but these are the formats people send and we test)
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "AVIF", "BMP", "TIFF", "GIF")
FORMATS_FOR_PEOPLE = "PNG (best: RGBA with a transparent background), JPEG, WebP, AVIF, BMP, TIFF or GIF"

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MODES_WITH_ALPHA = ("RGBA", "LA", "La", "RGBa", "PA")


def load_image(source, name: str | None = None) -> Image.Image:
    """Open `source` (a path, bytes or a binary file object) as an upright 8-bit RGB or RGBA image.

    `name` names the image in error messages (default: the file name, or "the image").
    Raises InputError (400, 413 too large, 415 not an image) with a message a person can act on.
    """
    data, name = _read_bytes(source, name)
    if not data:
        raise InputError(f"{name} is empty (0 bytes); send an image file ({FORMATS_FOR_PEOPLE})", code="empty_image")
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB. "
                         "Scale it down (the model sees 256x256 pixels)", http_status=413, code="image_too_large")
    image = _open_checked(data, name)
    return normalize_mode(_upright(image))


def _read_bytes(source, name):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "the image"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        name = name or path.name
        if not path.is_file():
            raise InputError(f"no image file at {path}; check the path", code="file_not_found")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{name} is {path.stat().st_size / 2**20:.0f} MiB; the limit is "
                             f"{MAX_FILE_BYTES // 2**20} MiB. Scale it down (the model sees 256x256 pixels)",
                             http_status=413, code="image_too_large")
        return path.read_bytes(), name
    if hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)
        if isinstance(data, str):
            raise TypeError("open the image file in binary mode ('rb')")
        return bytes(data), name or Path(str(getattr(source, "name", "") or "the image")).name
    raise TypeError(f"load_image takes a path, bytes or a binary file object, not {type(source).__name__}")


def _open_checked(data: bytes, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two bomb limits; we refuse either way
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_readable_formats())
            _check_dimensions(image.size, name)
            image.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{name} has too many pixels ({error}); the limit is {MAX_PIXELS // 1_000_000} "
                         "megapixels. Scale it down", http_status=413, code="image_too_large") from error
    except Image.UnidentifiedImageError as error:
        raise InputError(f"{name} is not an image that can be read; use {FORMATS_FOR_PEOPLE}",
                         http_status=415, code="not_an_image") from error
    except (OSError, SyntaxError, EOFError, ValueError) as error:
        raise InputError(f"{name} is damaged or truncated and cannot be decoded ({error}); "
                         "save or export it again", code="damaged_image") from error
    return image


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return image  # broken EXIF: the pixels themselves are fine, use them as stored


def _readable_formats() -> list:
    # a Pillow build may lack a decoder (AVIF), and phone "MPO" JPEGs open through JPEG
    Image.init()
    return [name for name in FORMATS if name in Image.OPEN]


def _check_dimensions(size, name: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputError(f"{name} is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                         f"{MAX_PIXELS // 1_000_000} megapixels. Scale it down (the model sees 256x256 pixels)",
                         http_status=413, code="image_too_large")
    if max(width, height) > MAX_SIDE:
        raise InputError(f"{name} is {width}x{height} pixels; sides longer than {MAX_SIDE} are refused. "
                         "Crop or scale it", http_status=413, code="image_too_large")
    if min(width, height) < MIN_SIDE:
        raise InputError(f"{name} is only {width}x{height} pixels; each side needs at least {MIN_SIDE}",
                         code="image_too_small")


def normalize_mode(image: Image.Image) -> Image.Image:
    """The same picture in mode RGBA (when it carries transparency) or RGB, 8 bits per channel.

    16-bit and 32-bit integer greyscale is read as 0..65535 and scaled, float greyscale as 0..1.
    """
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(np.nan_to_num(values) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in _MODES_WITH_ALPHA or "transparency" in image.info:
        # Pillow turns a palette's transparent entries or a colour key into alpha here
        return image.convert("RGBA")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX


def has_useful_alpha(image: Image.Image) -> bool:
    """True when the image has an alpha channel that is not fully opaque everywhere."""
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255
