"""The input image as SyncDreamer expects it: 256x256 RGB, object centred, on white.

This follows the reference's `prepare_inputs` (reference/syncdreamer_facts.md §6.1-6.3) step
by step, including its quirks (PIL's exclusive crop box drops the last foreground row and
column; the scaled size is truncated), so that the model sees what it saw in the reference.
One deliberate difference: an RGB image without alpha gets white, not black, padding.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .. import protocol
from ..errors import InputError
from .images import has_useful_alpha, load_image, normalize_mode
from .params import check_value

MODEL_INPUT_SIZE = protocol.VIEW_SIZE
NO_CROP = protocol.NO_CROP
CROP_SIZE_RANGE = protocol.CROP_SIZE_RANGE
BACKGROUND_CHOICES = protocol.BACKGROUND_CHOICES

# what was used as the object's mask: recorded in cameras.json as generation.background
BACKGROUND_FROM_ALPHA = "alpha"
BACKGROUND_REMOVED = "rembg"
BACKGROUND_KEPT = "keep"


def check_crop_size(crop_size) -> int:
    """`crop_size` as an int if it is -1 (no crop) or 64..256; InputError otherwise."""
    low, high = CROP_SIZE_RANGE
    if isinstance(crop_size, bool) or not isinstance(crop_size, int):
        raise InputError(f"crop_size must be -1 (no crop) or a whole number from {low} to {high}, "
                         f"got {crop_size!r}; 200 suits most objects", code=protocol.ErrorCode.BAD_PARAMETER)
    return check_value(protocol.PARAM_SPECS["crop_size"], crop_size, spell=lambda name: name)


def background_source(image: Image.Image, background: str = "auto") -> str:
    """Where the object's mask will come from for this image and `background` choice.

    "auto": the image's own alpha when it has transparency, otherwise background removal;
    "keep": the image as it is; "remove": always background removal.
    Returns BACKGROUND_FROM_ALPHA, BACKGROUND_REMOVED or BACKGROUND_KEPT.
    """
    if background not in BACKGROUND_CHOICES:
        raise InputError(f"background must be one of {', '.join(BACKGROUND_CHOICES)}, got {background!r}",
                         code="bad_parameter")
    if background == "remove":
        return BACKGROUND_REMOVED
    if background == "keep":
        return BACKGROUND_FROM_ALPHA if has_useful_alpha(image) else BACKGROUND_KEPT
    return BACKGROUND_FROM_ALPHA if has_useful_alpha(image) else BACKGROUND_REMOVED


def preprocess_for_syncdreamer(image, crop_size: int = 200, background: str = "auto",
                               rembg_model=None) -> Image.Image:
    """The 256x256 RGB image that the model sees, composited on white.

    `image`: a path, bytes, a binary file object (read with `images.load_image`) or a PIL image.
    `crop_size` 64..256: the object (alpha > 0) is cropped, scaled so that its longer side is
    `crop_size` pixels, and centred. -1: the whole image is padded to a square and scaled to 256.
    `background`: see `background_source`. `rembg_model`: path of the background-removal model
    file (default: u2net.onnx in rembg's model folder).
    """
    check_crop_size(crop_size)
    image = normalize_mode(image) if isinstance(image, Image.Image) else load_image(image)
    source = background_source(image, background)
    if source == BACKGROUND_REMOVED:
        from .segmentation import segment_foreground  # lazily: rembg is slow to import

        image = segment_foreground(composite_on_white(image) if image.mode == "RGBA" else image,
                                   rembg_model=rembg_model)
    if source == BACKGROUND_REMOVED and _is_fully_transparent(image):
        raise InputError("background removal found no object in this image. Send an RGBA image with a "
                         "transparent background, or use background \"keep\"", code=protocol.ErrorCode.EMPTY_OBJECT)
    check_has_object(image, background)
    rgba = image.convert("RGBA")  # an opaque RGB image counts as all object
    if crop_size == NO_CROP:
        framed = _scale_into_square(rgba)
    else:
        framed = _crop_and_centre(rgba, crop_size)
    return composite_on_white(framed)


def _crop_and_centre(rgba: Image.Image, crop_size: int) -> Image.Image:
    alpha = np.asarray(rgba.getchannel("A"))
    rows = np.flatnonzero(alpha.max(axis=1) > 0)
    columns = np.flatnonzero(alpha.max(axis=0) > 0)
    left, top, right, bottom = columns[0], rows[0], columns[-1], rows[-1]
    # the reference's box (min, min, max, max) is exclusive at max: keep that, but never empty
    box = (int(left), int(top), int(max(right, left + 1)), int(max(bottom, top + 1)))
    width, height = box[2] - box[0], box[3] - box[1]
    scale = crop_size / max(width, height)
    size = (max(1, int(scale * width)), max(1, int(scale * height)))
    # resampled straight from the box: no full-size copy of a large image's crop
    resized = rgba.resize(size, Image.Resampling.BICUBIC, box=box)
    canvas = Image.new("RGBA", (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), (0, 0, 0, 0))
    canvas.paste(resized, ((MODEL_INPUT_SIZE - size[0]) // 2, (MODEL_INPUT_SIZE - size[1]) // 2))
    return canvas


def _scale_into_square(rgba: Image.Image) -> Image.Image:
    """The whole image scaled so that its longer side fills the model input, centred.

    Scaled first, then padded: padding a 16384x2441 image to a square first would allocate a
    16384x16384 canvas (1 GiB) only to shrink it to 256x256.
    """
    scale = MODEL_INPUT_SIZE / max(rgba.size)
    size = (max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale)))
    resized = rgba.resize(size, Image.Resampling.BICUBIC)
    canvas = Image.new("RGBA", (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE), (0, 0, 0, 0))
    canvas.paste(resized, ((MODEL_INPUT_SIZE - size[0]) // 2, (MODEL_INPUT_SIZE - size[1]) // 2))
    return canvas


def _is_fully_transparent(image: Image.Image) -> bool:
    return image.mode == "RGBA" and image.getchannel("A").getextrema()[1] == 0


def check_has_object(image: Image.Image, background: str = "auto") -> None:
    """Refuse an image without an object, before any model time is spent (a job checks this at
    submit time). With background removal the object is only known after it ran."""
    if background_source(image, background) != BACKGROUND_REMOVED and _is_fully_transparent(image):
        raise InputError("the image is fully transparent: there is no object to show the model. Send an image "
                         "whose object is opaque, or use background \"remove\" on a photo",
                         code=protocol.ErrorCode.EMPTY_OBJECT)


def composite_on_white(image: Image.Image) -> Image.Image:
    """RGB of `image` over a white background: rgb * alpha + (1 - alpha), as the reference."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float32) / 255.0
    alpha = values[..., 3:]
    rgb = values[..., :3] * alpha + (1.0 - alpha)
    return Image.fromarray(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8))


def to_model_input(image: Image.Image) -> np.ndarray:
    """The model's input array: float32 (3, 256, 256) in [-1, 1] (channels first)."""
    if image.mode != "RGB" or image.size != (MODEL_INPUT_SIZE, MODEL_INPUT_SIZE):
        raise ValueError(f"expected the preprocessed RGB {MODEL_INPUT_SIZE}x{MODEL_INPUT_SIZE} image, "
                         f"got {image.mode} {image.size[0]}x{image.size[1]}")
    values = np.asarray(image, dtype=np.float32) / 255.0
    return np.ascontiguousarray((values * 2.0 - 1.0).transpose(2, 0, 1))
