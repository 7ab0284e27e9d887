"""Preview icons for the panel: the chosen input image, and after a job the server's
`input.png` (the cropped, scaled 256x256 image the model really saw). The crop itself is
done only by the server; the add-on never re-implements it."""
import os

import bpy
import bpy.utils.previews

_collection = None


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


def register():
    global _collection
    _collection = bpy.utils.previews.new()


def unregister():
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
    _collection = None
