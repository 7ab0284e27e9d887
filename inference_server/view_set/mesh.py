"""The coloured proxy mesh of a view set (`python -m inference_server mesh`, cli/mesh.py), and
`mesh.ply` written into a set (the `mesh` job option).

Reads the views with reading.read_views; the mesh itself is `proxy_mesh` (numpy only).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..proxy_mesh import DEFAULT_RESOLUTION, MeshError, ProxyMesh, build_proxy_mesh, write_ply
from .reading import read_views
from .staging import replaced_whole

log = logging.getLogger("glimpse")


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
