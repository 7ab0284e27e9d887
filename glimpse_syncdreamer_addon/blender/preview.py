"""Preview icons for the panel: the chosen input image; the image the model will see (asked
of the server by glimpse3d.preview_input); and after a job the server's `input.png` (the
cropped, scaled 256x256 image the model really saw). The crop itself is done only by the
server; the add-on never re-implements it."""
import os

import bpy
import bpy.utils.previews

_collection = None
# (PNG path, what it was made from) of the last model-input preview, or None.
_model_input_preview = None


def file_icon(path: str) -> int:
    """Icon id of an image file (0 when it cannot be shown); reloaded when the file changes."""
    if _collection is None or not path or not os.path.isfile(path):
        return 0
    key = f"{path}|{os.path.getmtime(path)}"
    if key not in _collection:
        _collection.load(key, path, "IMAGE")
    return _collection[key].icon_id


def image_icon(image) -> int:
    """Icon id of an image datablock."""
    if image is None:
        return 0
    image.preview_ensure()
    return image.preview.icon_id


def model_input_path(folders) -> str:
    """The `input.png` of the latest generated set, or ""."""
    for folder in folders:
        path = os.path.join(folder, "input.png")
        if os.path.isfile(path):
            return path
    return ""


def save_model_input_preview(png: bytes, folder: str, made_from) -> str:
    """Keep the server's preview PNG (written whole, then renamed) and remember its inputs."""
    global _model_input_preview
    target = os.path.join(folder, "model_input.png")
    partial = target + ".partial"
    with open(partial, "wb") as fh:
        fh.write(png)
    os.replace(partial, target)
    _model_input_preview = (target, made_from)
    return target


def input_key(settings) -> tuple:
    """What a model-input preview depends on: the chosen image, the crop size, the background."""
    if settings.input_source == "IMAGE":
        source = ("IMAGE", settings.image.name if settings.image is not None else "")
    else:
        source = ("FILE", bpy.path.abspath(settings.filepath))
    return source, settings.crop_size, settings.background.lower()


def model_input_preview(current_inputs):
    """(path, up to date?) of the last preview, or ("", False) when there is none."""
    if _model_input_preview is None or not os.path.isfile(_model_input_preview[0]):
        return "", False
    path, made_from = _model_input_preview
    return path, made_from == current_inputs


def register():
    global _collection
    _collection = bpy.utils.previews.new()


def unregister():
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
    _collection = None
