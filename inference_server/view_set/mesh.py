"""The coloured proxy mesh of a view set (`python -m inference_server mesh`, cli/mesh.py), and
`mesh.ply` written into a set (the `mesh` job option).

Reads a set folder (cameras.json), a folder of only view_00.png ... view_15.png or a 4096x256
strip (both with the model's fixed cameras); the mesh itself is `proxy_mesh` (numpy only).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .. import cameras, protocol
from ..errors import InputError
from ..proxy_mesh import DEFAULT_RESOLUTION, MeshError, ProxyMesh, ViewCamera, build_proxy_mesh, write_ply
from .staging import replaced_whole

log = logging.getLogger("glimpse")


def read_views(source):
    """(images as uint8 arrays, ViewCameras) of a set folder, a views-only folder or a strip PNG."""
    from PIL import Image

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


def mesh_from_folder(source, resolution: int = DEFAULT_RESOLUTION, reject_views: bool = True) -> ProxyMesh:
    images, view_cameras = read_views(source)
    try:
        return build_proxy_mesh(images, view_cameras, resolution=resolution, reject_views=reject_views)
    except MeshError as error:
        raise InputError(f"{source}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None


def write_set_mesh(folder, resolution: int = DEFAULT_RESOLUTION) -> Path:
    """Write mesh.ply into the set `folder` and list it in its cameras.json (both replaced whole,
    never half-written): {"mesh": {"file", "resolution", "rejected_views", "unseen_property"}}."""
    folder = Path(folder)
    mesh = mesh_from_folder(folder, resolution)
    path = write_ply(folder / protocol.MESH_FILE, mesh.vertices, mesh.faces, mesh.colours, mesh.unseen,
                     mesh.normals, comment=f"Glimpse3D proxy mesh, resolution {mesh.resolution}")
    _list_mesh(folder, {"file": protocol.MESH_FILE, "resolution": mesh.resolution,
                        "rejected_views": list(mesh.rejected_views), "unseen_property": "unseen"})
    return path


def _list_mesh(folder: Path, entry: dict) -> None:
    """cameras.json with its "mesh" entry, replaced whole (a temporary file, then a rename)."""
    cameras_path = folder / protocol.CAMERAS_FILE
    document = json.loads(cameras_path.read_text(encoding="utf-8"))
    document["mesh"] = entry
    with replaced_whole(cameras_path) as partial:
        partial.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_mesh_if_asked(folder, views, request) -> None:
    """A pipeline set writer: mesh.ply into the set when the job asked for it. Views in which no
    object can be told apart (random weights paint noise) give no mesh: cameras.json then says why
    ({"mesh": {"file": null, "error": ...}}) and the views are kept."""
    options = getattr(request, "options", None) or {}
    if not options.get("mesh"):
        return
    resolution = options.get("mesh_resolution", DEFAULT_RESOLUTION)
    try:
        write_set_mesh(folder, resolution)
    except InputError as error:
        log.warning("no proxy mesh for %s: %s", Path(folder).name, error.message)
        _list_mesh(Path(folder), {"file": None, "resolution": resolution, "error": error.message})
