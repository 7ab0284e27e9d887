"""Per-vertex colours of the hull mesh, blended from the views that see each vertex.

A view sees a vertex when the vertex faces it and is the nearest surface along its pixel (a depth
buffer of the mesh itself, splatted from its vertices). Pixels on the silhouette's outline mix
object and background: a vertex that projects there takes the colour from a little way inside. Vertices that no view sees are
flagged, and take their colour from their neighbours. Only numpy: this runs inside Blender too.
"""
from __future__ import annotations

import numpy as np

from .hull import sample_bilinear

# Views that see a surface at a grazing angle (cosine below this) give it no colour.
MIN_FACING = 0.2
# Samples closer than this to the silhouette outline (pixels) mix in the background.
EDGE_PX = 1.5
# How much a sample moved in from the outline counts, against one that needed no move.
EDGE_WEIGHT = 0.1
# How much more a frontal view counts than an oblique one: weight = facing ** FACING_POWER.
FACING_POWER = 4.0


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit normals: the area-weighted mean of the faces around each vertex."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)  # length = twice the area
    normals = np.zeros_like(vertices, dtype=np.float64)
    for i in range(3):
        np.add.at(normals, faces[:, i], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def _depth_buffer(u, v, depth, width: int, height: int, scale: int) -> np.ndarray:
    """The nearest depth per block of scale x scale pixels, from splatted surface points."""
    columns, rows = -(-width // scale), -(-height // scale)
    column = (u / scale).astype(np.int64)
    row = (v / scale).astype(np.int64)
    ok = (u >= 0) & (v >= 0) & (column < columns) & (row < rows) & (depth > 0)
    buffer = np.full(columns * rows, np.inf, dtype=np.float32)
    np.minimum.at(buffer, row[ok] * columns + column[ok], depth[ok])
    return buffer.reshape(rows, columns)


def _gradient(distance: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Unit direction (du, dv) in which the signed distance grows (out of the silhouette)."""
    du = sample_bilinear(distance, u + 1, v) - sample_bilinear(distance, u - 1, v)
    dv = sample_bilinear(distance, u, v + 1) - sample_bilinear(distance, u, v - 1)
    length = np.maximum(np.hypot(du, dv), np.float32(1e-6))
    return du / length, dv / length


def view_colours(vertices, normals, images, view_cameras, distance_images, cell_size: float):
    """Blend the views' colours at the vertices.

    images: (H, W, 3+) float32 0..1 per view; distance_images: the silhouettes' signed distances
    (pixels). Returns (colours (V, 3) float32 0..1, seen (V,) bool).
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    total = np.zeros((len(vertices), 3), dtype=np.float32)
    weights = np.zeros(len(vertices), dtype=np.float32)
    for image, camera, distance in zip(images, view_cameras, distance_images):
        to_camera = camera.centre.astype(np.float32) - vertices
        facing = np.einsum("ij,ij->i", normals, to_camera) / np.linalg.norm(to_camera, axis=1)
        # on a closed surface the nearest point along a ray always faces the camera
        front = np.nonzero(facing > 0)[0]
        u, v, depth = camera.pixels(vertices[front])
        pixels_per_unit = float(camera.K[0, 0]) / float(np.median(depth))
        # depth buffer blocks a bit larger than the spacing of the splatted vertices: no holes
        scale = max(1, int(np.ceil(1.5 * cell_size * pixels_per_unit)))
        buffer = _depth_buffer(u, v, depth, camera.width, camera.height, scale)
        column = np.clip((u / scale).astype(np.int64), 0, buffer.shape[1] - 1)
        row = np.clip((v / scale).astype(np.int64), 0, buffer.shape[0] - 1)
        tolerance = 2.0 * cell_size + 2.0 * scale / pixels_per_unit
        use = (depth <= buffer[row, column] + tolerance) & (facing[front] > MIN_FACING)
        outline = sample_bilinear(distance, u, v, outside=np.float32(1e6))
        use &= outline < 1.0  # a vertex of the hull lies on or inside every kept silhouette
        chosen, u, v, outline = front[use], u[use], v[use], outline[use]
        weight = facing[chosen] ** FACING_POWER
        # Near the outline, take the colour from a little way inside it instead (the hull's rims
        # and caps are seen only there), and let those samples count less than clean ones.
        near = outline > -EDGE_PX
        if near.any():
            step = outline[near] + EDGE_PX + 0.5
            du, dv = _gradient(distance, u[near], v[near])
            u[near] -= du * step
            v[near] -= dv * step
            weight[near] *= EDGE_WEIGHT
        total[chosen] += weight[:, None] * sample_bilinear(image[..., :3], u, v)
        weights[chosen] += weight
    seen = weights > 0
    colours = np.zeros((len(vertices), 3), dtype=np.float32)
    colours[seen] = total[seen] / weights[seen, None]
    return colours, seen


def fill_unseen(colours: np.ndarray, known: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Colours of the unknown vertices from their known neighbours, ring by ring inwards: each
    ring takes the mean of its neighbours in the ring before."""
    colours = colours.copy()
    known = known.copy()
    if known.all() or not known.any():
        return colours
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])  # (from, to), both ways
    edges = edges[~known[edges[:, 1]]]  # only edges into unknown vertices matter
    order = np.argsort(edges[:, 0], kind="stable")
    sources, targets = edges[order, 0], edges[order, 1]
    starts = np.searchsorted(sources, np.arange(len(colours) + 1))
    ring = np.unique(sources[known[sources]])
    while len(ring):
        # the edges out of this ring, by the start and length of each vertex's run
        counts = starts[ring + 1] - starts[ring]
        picks = np.repeat(starts[ring] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        into = targets[picks]
        fresh = ~known[into]
        into, source = into[fresh], sources[picks][fresh]
        if not len(into):
            break
        reached, slot = np.unique(into, return_inverse=True)
        count = np.bincount(slot, minlength=len(reached)).astype(np.float32)
        for channel in range(3):
            colours[reached, channel] = np.bincount(slot, colours[source, channel], minlength=len(reached)) / count
        known[reached] = True
        ring = reached
    return colours
