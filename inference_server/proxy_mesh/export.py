"""A mesh file of a set's views, its format chosen by the file's extension: `.ply` (the coloured
proxy mesh) or `.glb` (the light, textured asset). Server side only (the `.glb` needs the `mesh`
extra).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SetupError
from .build import DEFAULT_RESOLUTION, build_proxy_mesh
from .ply import write_ply
from .silhouettes import BACKGROUND_TOLERANCE

FORMATS = (".ply", ".glb")
DEFAULT_FACES = 20000  # the textured asset's triangle budget
FACES_RANGE = (500, 500000)
DEFAULT_TEXTURE_SIZE = 1024
TEXTURE_SIZES = (64, 8192)


@dataclass
class Written:
    """What was written: the file, its triangle count, the views left out, a one-line summary."""

    path: Path
    faces: int
    rejected_views: tuple
    summary: str


def write_mesh_file(path, images, view_cameras, resolution: int = DEFAULT_RESOLUTION, masks=None,
                    reject_views: bool = True, tolerance: float = BACKGROUND_TOLERANCE,
                    faces: int = DEFAULT_FACES, texture_size: int = DEFAULT_TEXTURE_SIZE, comment: str = "") -> Written:
    """Build and write the mesh of the views to `path` (.ply or .glb), whole or not at all."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"the output must be a .ply (coloured proxy mesh) or .glb (textured asset) file, got {path}")
    mesh = build_proxy_mesh(images, view_cameras, resolution=resolution, masks=masks, reject_views=reject_views,
                            tolerance=tolerance)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".ply":
        write_ply(path, mesh.vertices, mesh.faces, mesh.colours, mesh.unseen, mesh.normals, comment=comment)
        return Written(path, len(mesh.faces), mesh.rejected_views,
                       f"{len(mesh.vertices)} vertices, {len(mesh.faces)} triangles, "
                       f"{int(mesh.unseen.sum())} unseen vertices")
    try:  # the optional `mesh` extra: only a .glb needs it, so the server starts without it
        from .asset import build_asset
        from .glb import write_glb
    except ImportError as error:
        raise SetupError(f"a .glb asset needs the mesh extra ({error}): pip install "
                         "'glimpse3d-syncdreamer[mesh]', or write a .ply", code="mesh_extra_missing") from error
    asset = build_asset(images, view_cameras, faces=faces, texture_size=texture_size, masks=masks,
                        tolerance=tolerance, proxy=mesh)
    write_glb(path, asset)
    return Written(path, len(asset.faces), asset.rejected_views,
                   f"{len(asset.faces)} triangles, a {texture_size}x{texture_size} texture, "
                   f"{100 * (1 - asset.seen_share):.0f}% of it seen by no view")
