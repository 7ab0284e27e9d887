"""A light, textured asset from a set's views: the proxy mesh decimated to a face budget, a UV
atlas, and the views baked into a texture. Server side only (fast-simplification and xatlas, the
`mesh` extra); Blender builds the same asset with the numpy parts (texture_bake) and its own
operators.

    from inference_server.proxy_mesh.asset import build_asset
    from inference_server.proxy_mesh.glb import write_glb
    asset = build_asset(images, view_cameras)  # 20 000 faces, a 1024 x 1024 texture
    write_glb("asset.glb", asset)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import fast_simplification
import numpy as np
import xatlas

from .build import DEFAULT_RESOLUTION, MeshError, ProxyMesh, build_proxy_mesh
from .export import DEFAULT_FACES, DEFAULT_TEXTURE_SIZE, FACES_RANGE, TEXTURE_SIZES
from .silhouettes import BACKGROUND_TOLERANCE
from .texture_bake import bake_texture
# Empty texels between two charts of the atlas: enough that filtering never mixes two charts.
ATLAS_PADDING = 4


@dataclass
class TexturedAsset:
    """A triangle mesh with one UV per vertex (split along the atlas's seams) and its texture."""

    vertices: np.ndarray  # (V, 3) float32, the cameras' world frame (z up)
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    uvs: np.ndarray  # (V, 2) float32 0..1, v up
    texture: np.ndarray  # (S, S, 3) uint8, row 0 at the top (v = 1)
    seen_share: float  # of the texels in triangles, the share that a view saw
    rejected_views: tuple = ()
    timings: dict = field(default_factory=dict)


def build_asset(images, view_cameras, faces: int = DEFAULT_FACES, texture_size: int = DEFAULT_TEXTURE_SIZE,
                resolution: int = DEFAULT_RESOLUTION, masks=None, reject_views: bool = True,
                tolerance: float = BACKGROUND_TOLERANCE, proxy: ProxyMesh | None = None) -> TexturedAsset:
    """The textured asset of the object in `images` (arguments as `build_proxy_mesh`); `proxy`:
    a proxy mesh already built from these views, else one is built."""
    if not isinstance(faces, (int, np.integer)) or not FACES_RANGE[0] <= faces <= FACES_RANGE[1]:
        raise MeshError(f"faces must be a whole number from {FACES_RANGE[0]} to {FACES_RANGE[1]} "
                        f"(the asset's triangle budget; {DEFAULT_FACES} is usual), got {faces!r}")
    if not isinstance(texture_size, (int, np.integer)) or not TEXTURE_SIZES[0] <= texture_size <= TEXTURE_SIZES[1]:
        raise MeshError(f"texture_size must be a whole number from {TEXTURE_SIZES[0]} to {TEXTURE_SIZES[1]} "
                        f"pixels (1024 or 2048 are usual), got {texture_size!r}")
    started = time.perf_counter()
    if proxy is None:
        proxy = build_proxy_mesh(images, view_cameras, resolution=resolution, masks=masks,
                                 reject_views=reject_views, tolerance=tolerance)
    timings = {"hull": time.perf_counter() - started}
    vertices, triangles = decimate(proxy.vertices, proxy.faces, int(faces))
    timings["decimate"] = time.perf_counter() - started - sum(timings.values())
    vertices, triangles, uvs = uv_atlas(vertices, triangles, int(texture_size))
    timings["atlas"] = time.perf_counter() - started - sum(timings.values())
    kept = [index for index in range(len(view_cameras)) if index not in proxy.rejected_views]
    masks = list(masks) if masks is not None else [None] * len(view_cameras)
    baked = bake_texture(vertices, triangles, uvs, triangles, [images[i] for i in kept],
                         [view_cameras[i] for i in kept], size=int(texture_size),
                         masks=[masks[i] for i in kept], tolerance=tolerance)
    timings["texture"] = time.perf_counter() - started - sum(timings.values())
    timings["total"] = time.perf_counter() - started
    texture = np.clip(np.round(baked.texture * 255.0), 0, 255).astype(np.uint8)
    return TexturedAsset(vertices.astype(np.float32), triangles, uvs.astype(np.float32), texture,
                         float(baked.seen[baked.covered].mean()), proxy.rejected_views, timings)


def decimate(vertices, faces, target_faces: int):
    """(vertices, faces) simplified by quadric edge collapse to about `target_faces` triangles."""
    if len(faces) <= target_faces:
        return np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.int64)
    points, triangles = fast_simplification.simplify(
        np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.int32),
        target_reduction=1.0 - target_faces / len(faces))
    used = np.unique(triangles)  # the simplifier may leave vertices that no face uses
    remap = np.full(len(points), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return points[used].astype(np.float32), remap[triangles]


def uv_atlas(vertices, faces, texture_size: int):
    """(vertices, faces, uvs): the mesh cut along the atlas's seams, with a UV (0..1) per vertex."""
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = ATLAS_PADDING
    pack.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack)
    mapping, triangles, uvs = atlas[0]
    return np.asarray(vertices)[mapping], triangles.astype(np.int64), uvs.astype(np.float64)
