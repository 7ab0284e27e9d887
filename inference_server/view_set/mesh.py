"""The coloured proxy mesh of a view set (`python -m inference_server mesh`, cli/mesh.py), and
`mesh.ply` and `asset.glb` written into a set (the `mesh` and `mesh_asset` job options).

Reads the views with reading.read_views; the mesh itself is `proxy_mesh` (numpy only).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..proxy_mesh import DEFAULT_RESOLUTION, MeshError, ProxyMesh, build_proxy_mesh, write_ply
from ..proxy_mesh.export import DEFAULT_TEXTURE_SIZE, write_mesh_file
from .reading import read_views
from .staging import replaced_whole

log = logging.getLogger("glimpse")


def mesh_from_folder(source, resolution: int = DEFAULT_RESOLUTION, reject_views: bool = True,
                     masks=None) -> ProxyMesh:
    """The proxy mesh of a set; `masks` (one bool mask per view) or each view's alpha or white
    background."""
    images, view_cameras = read_views(source)
    try:
        return build_proxy_mesh(images, view_cameras, resolution=resolution, reject_views=reject_views,
                                masks=masks)
    except MeshError as error:
        raise InputError(f"{source}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None


def write_set_asset(folder, masks=None) -> Path:
    """Write asset.glb (the textured asset at default settings) into the set `folder` and list it
    in its cameras.json: {"asset": {"file", "faces", "texture_size", "rejected_views"}}."""
    folder = Path(folder)
    images, view_cameras = read_views(folder)
    try:
        written = write_mesh_file(folder / protocol.ASSET_FILE, images, view_cameras, masks=masks)
    except MeshError as error:
        raise InputError(f"{folder}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None
    _list_mesh(folder, {"file": protocol.ASSET_FILE, "faces": written.faces, "texture_size": DEFAULT_TEXTURE_SIZE,
                        "rejected_views": list(written.rejected_views)}, key="asset")
    return written.path


def write_set_mesh(folder, resolution: int = DEFAULT_RESOLUTION, masks=None) -> Path:
    """Write mesh.ply into the set `folder` and list it in its cameras.json (both replaced whole,
    never half-written): {"mesh": {"file", "resolution", "rejected_views", "unseen_property"}}."""
    folder = Path(folder)
    mesh = mesh_from_folder(folder, resolution, masks=masks)
    path = write_ply(folder / protocol.MESH_FILE, mesh.vertices, mesh.faces, mesh.colours, mesh.unseen,
                     mesh.normals, comment=f"Glimpse3D proxy mesh, resolution {mesh.resolution}")
    _list_mesh(folder, {"file": protocol.MESH_FILE, "resolution": mesh.resolution,
                        "rejected_views": list(mesh.rejected_views), "unseen_property": "unseen"})
    return path


def _list_mesh(folder: Path, entry: dict, key: str = "mesh") -> None:
    """cameras.json with its "mesh" (or "asset") entry, replaced whole (a temporary file, then a rename)."""
    cameras_path = folder / protocol.CAMERAS_FILE
    document = json.loads(cameras_path.read_text(encoding="utf-8"))
    document[key] = entry
    with replaced_whole(cameras_path) as partial:
        partial.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_requested_meshes(folder, options: dict, masks=None) -> None:
    """mesh.ply and/or asset.glb into the set as the job's options ask. Views in which no object
    can be told apart (random weights paint noise) give no mesh: cameras.json then says why
    ({"mesh": {"file": null, "error": ...}}) and the views are kept."""
    if options.get("mesh_asset"):
        try:
            write_set_asset(folder, masks)
        except InputError as error:
            log.warning("no textured asset for %s: %s", Path(folder).name, error.message)
            _list_mesh(Path(folder), {"file": None, "error": error.message}, key="asset")
    if not options.get("mesh"):
        return
    resolution = options.get("mesh_resolution", DEFAULT_RESOLUTION)
    try:
        write_set_mesh(folder, resolution, masks)
    except InputError as error:
        log.warning("no proxy mesh for %s: %s", Path(folder).name, error.message)
        _list_mesh(Path(folder), {"file": None, "resolution": resolution, "error": error.message})
