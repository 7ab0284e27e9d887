"""Reading a view set on disk: its images with their cameras, and which files it holds.

A set folder (cameras.json), a folder of only view_00.png ... view_15.png, or the reference's
4096x256 strip PNG (both with the model's fixed cameras).
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .. import cameras, protocol
from ..errors import InputError
from ..proxy_mesh import ViewCamera


def set_files(folder: Path) -> tuple:
    """The contract's files in their order, then any a set writer added (e.g. mesh.ply)."""
    extra = sorted(path.name for path in Path(folder).iterdir() if path.name not in protocol.SET_FILES)
    return (*protocol.SET_FILES, *extra)


def read_views(source):
    """(images as uint8 arrays, ViewCameras) of a set folder, a views-only folder or a strip PNG."""
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source} does not exist: give a view set folder or a 4096x256 strip PNG",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    if source.is_file() and source.name not in (protocol.CAMERAS_FILE, *protocol.VIEW_FILES):
        with Image.open(source) as strip:
            if strip.size != (protocol.VIEW_COUNT * protocol.VIEW_SIZE, protocol.VIEW_SIZE):
                raise InputError(f"{source.name} is {strip.size[0]}x{strip.size[1]} pixels; a strip of sixteen views "
                                 f"is {protocol.VIEW_COUNT * protocol.VIEW_SIZE}x{protocol.VIEW_SIZE}",
                                 code=protocol.ErrorCode.BAD_PARAMETER)
            pixels = np.asarray(strip.convert("RGBA"))
        images = [pixels[:, i * protocol.VIEW_SIZE:(i + 1) * protocol.VIEW_SIZE] for i in range(protocol.VIEW_COUNT)]
        return images, fixed_cameras()
    folder = source if source.is_dir() else source.parent
    cameras_path = folder / protocol.CAMERAS_FILE
    if cameras_path.is_file():
        document = json.loads(cameras_path.read_text(encoding="utf-8"))
        width, height = document.get("image_size", [protocol.VIEW_SIZE, protocol.VIEW_SIZE])
        entries = sorted(document["views"], key=lambda entry: entry["index"])
        files = [folder / entry["file"] for entry in entries]
        view_cameras = [ViewCamera(np.asarray(entry["world_to_camera_opencv"], dtype=np.float64),
                                   np.asarray(entry["K"], dtype=np.float64), width, height) for entry in entries]
    else:
        files = [folder / name for name in protocol.VIEW_FILES]
        view_cameras = fixed_cameras()
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise InputError(f"{folder} is not a complete view set: {', '.join(missing)} missing. Give a set folder "
                         "(cameras.json), a folder of view_00.png ... view_15.png, or a strip PNG",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    images = []
    for path in files:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB")))
    return images, view_cameras


def fixed_cameras() -> list:
    """The model's sixteen target cameras."""
    w2c, _, K = cameras.target_cameras()
    return [ViewCamera(pose, K, cameras.IMAGE_SIZE, cameras.IMAGE_SIZE) for pose in w2c]
