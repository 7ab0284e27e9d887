"""Bake a set's views into a texture on any triangle mesh with UVs: the proxy asset's texture, and
the views projected onto an artist's own model.

Each texel is a point on the mesh (its triangle in UV space, at the texel's centre). A view gives
it a colour when the point faces the view and is the nearest surface along its pixel (a depth
buffer of the mesh itself, rasterised at twice the view's resolution); its weight grows with how
squarely the view sees it (facing ** FACING_POWER) and with its distance inside the view's
outline (pixels near an outline mix object and background, and a small misalignment moves the
outline most). Texels that no view sees take the colour of the mesh around them: the vertices'
colours are baked the same way, the unseen ones filled from their seen neighbours along the mesh
(ring by ring), and an unseen texel takes its triangle's interpolated vertex colours. Texels in no
triangle (the atlas's gutters) are filled outwards from the charts, so that filtering at a chart's
edge never reaches black.

Only numpy: this runs inside Blender too (the add-on bundles this package).

    from inference_server.proxy_mesh.texture_bake import bake_texture
    baked = bake_texture(vertices, faces, uvs, uv_faces, images, view_cameras, size=1024)
    baked.texture  # (1024, 1024, 3) float32 0..1, row 0 at v = 1 (the top of an image file)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colours import fill_unseen, vertex_normals
from .hull import sample_bilinear
from .silhouettes import BACKGROUND_TOLERANCE, as_float_image, signed_distance, silhouette

# A view that sees a surface at a grazing angle (cosine below this) gives it no colour.
MIN_FACING = 0.15
# How much more a frontal view counts than an oblique one: weight = facing ** FACING_POWER.
FACING_POWER = 4.0
# A texel's weight rises from nothing on a view's outline to full this many pixels inside it.
OUTLINE_RAMP_PX = 4.0
# The weight on the outline itself, so that a rim that only outlines see still gets a colour.
OUTLINE_FLOOR = 0.02
# The depth buffer is rasterised at this many samples per view pixel and axis.
DEPTH_SUPERSAMPLE = 2
# A point counts as the nearest surface when its depth is within this many pixel footprints
# (divided by how squarely it is seen) of the depth buffer.
DEPTH_TOLERANCE_PX = 1.5


@dataclass
class BakedTexture:
    """A baked texture and which of its texels the views saw."""

    texture: np.ndarray  # (size, size, 3) float32 0..1; row 0 is the top of the image (v = 1)
    seen: np.ndarray  # (size, size) bool: a view saw the texel's point
    covered: np.ndarray  # (size, size) bool: the texel lies in a triangle (the rest is gutter)
    vertex_colours: np.ndarray  # (V, 3) float32 0..1, unseen vertices filled from their neighbours
    vertex_seen: np.ndarray  # (V,) bool


def bake_texture(vertices, faces, uvs, uv_faces, images, view_cameras, size: int = 1024,
                 outline_distances=None, masks=None, tolerance: float = BACKGROUND_TOLERANCE) -> BakedTexture:
    """The views baked into a (size, size) texture of the mesh.

    vertices (V, 3) and faces (F, 3): the mesh, counter-clockwise seen from outside, in the
    cameras' world frame. uvs (T, 2) in 0..1 (v up, as in glTF after its flip and in Blender) and
    uv_faces (F, 3): each face's corners in `uvs` (pass `faces` when the UVs are per vertex).
    images: (H, W, 3|4) per view, uint8 or float 0..1; view_cameras: a `ViewCamera` per view.
    outline_distances: each view's silhouette as a signed distance image (pixels, negative inside),
    else computed from `masks` (optional, per view) or the views themselves (alpha, or the white
    background, `tolerance` as in `silhouettes.silhouette`).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    uvs = np.asarray(uvs, dtype=np.float64)
    uv_faces = np.asarray(uv_faces, dtype=np.int64)
    if faces.shape != uv_faces.shape or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces and uv_faces must both be (F, 3), got {faces.shape} and {uv_faces.shape}")
    images = [as_float_image(image) for image in images]
    view_cameras = list(view_cameras)
    if len(images) != len(view_cameras):
        raise ValueError(f"need one camera per view, got {len(images)} views and {len(view_cameras)} cameras")
    if outline_distances is None:
        masks = list(masks) if masks is not None else [None] * len(images)
        outline_distances = [signed_distance(silhouette(image, mask, tolerance)) for image, mask in zip(images, masks)]

    # the texels' points: triangle, barycentric coordinates, position and normal
    texel, face, weights = rasterize(uvs[uv_faces] * size, size, size)
    normals = vertex_normals(vertices.astype(np.float32), faces).astype(np.float64)
    corners = faces[face]
    points = np.einsum("ij,ijk->ik", weights, vertices[corners])
    point_normals = np.einsum("ij,ijk->ik", weights, normals[corners])
    point_normals /= np.maximum(np.linalg.norm(point_normals, axis=1, keepdims=True), 1e-12)
    # the vertices are baked with the texels: they carry the colour into what no view sees
    all_points = np.concatenate([points, vertices])
    all_normals = np.concatenate([point_normals, normals])

    total = np.zeros((len(all_points), 3), dtype=np.float64)
    weight_sum = np.zeros(len(all_points), dtype=np.float64)
    for image, camera, distance in zip(images, view_cameras, outline_distances):
        depth_buffer = mesh_depth(vertices, faces, camera)
        view_weight = view_weights(all_points, all_normals, camera, depth_buffer, distance)
        use = np.nonzero(view_weight > 0)[0]
        u, v, _ = camera.pixels(all_points[use])
        total[use] += view_weight[use, None] * sample_bilinear(image[..., :3], u, v)
        weight_sum[use] += view_weight[use]

    seen_all = weight_sum > 0
    colours = np.zeros((len(all_points), 3), dtype=np.float64)
    colours[seen_all] = total[seen_all] / weight_sum[seen_all, None]
    vertex_seen = seen_all[len(points):]
    vertex_colours = fill_unseen(colours[len(points):].astype(np.float32), vertex_seen, faces)
    texel_colours = colours[:len(points)]
    texel_seen = seen_all[:len(points)]
    unseen = ~texel_seen
    texel_colours[unseen] = np.einsum("ij,ijk->ik", weights[unseen], vertex_colours[corners[unseen]])

    texture = np.zeros((size * size, 3), dtype=np.float32)
    texture[texel] = texel_colours
    seen = np.zeros(size * size, dtype=bool)
    seen[texel] = texel_seen
    covered = np.zeros(size * size, dtype=bool)
    covered[texel] = True
    texture = fill_gutters(texture.reshape(size, size, 3), covered.reshape(size, size))
    # rows were counted from v = 0 up; an image's first row is its top (v = 1)
    return BakedTexture(texture[::-1].copy(), seen.reshape(size, size)[::-1].copy(),
                        covered.reshape(size, size)[::-1].copy(), vertex_colours, vertex_seen)


def view_weights(points, normals, camera, depth_buffer, outline_distance) -> np.ndarray:
    """(N,) how much one view counts for each surface point: 0 where the view does not see the
    point (it faces away, or something nearer hides it, or it lies outside the view's outline),
    else facing ** FACING_POWER times the ramp in from the outline."""
    to_camera = camera.centre[None, :] - points
    distance = np.linalg.norm(to_camera, axis=1)
    facing = np.einsum("ij,ij->i", normals, to_camera) / np.maximum(distance, 1e-12)
    weight = np.zeros(len(points), dtype=np.float64)
    front = np.nonzero(facing > MIN_FACING)[0]
    u, v, depth = camera.pixels(points[front])
    inside = (u >= 0) & (v >= 0) & (u < camera.width) & (v < camera.height) & (depth > 0)
    front, u, v, depth = front[inside], u[inside], v[inside], depth[inside]
    scale = depth_buffer.shape[0] / camera.height
    row = np.clip((v * scale).astype(np.int64), 0, depth_buffer.shape[0] - 1)
    column = np.clip((u * scale).astype(np.int64), 0, depth_buffer.shape[1] - 1)
    footprint = depth / float(camera.K[0, 0])  # world size of one view pixel at that depth
    tolerance = DEPTH_TOLERANCE_PX * footprint / facing[front]
    visible = depth <= depth_buffer[row, column] + tolerance
    outline = sample_bilinear(outline_distance, u, v)
    ramp = np.clip(-outline / OUTLINE_RAMP_PX, 0.0, 1.0)
    ramp = np.where(outline < 0.5, np.maximum(ramp, OUTLINE_FLOOR), 0.0)  # outside the outline: none
    weight[front[visible]] = (facing[front[visible]] ** FACING_POWER) * ramp[visible]
    return weight


def mesh_depth(vertices, faces, camera, supersample: int = DEPTH_SUPERSAMPLE) -> np.ndarray:
    """(H * s, W * s) float32: the nearest depth of the mesh per sample of the view (inf where it
    shows no surface), by rasterising its triangles."""
    width, height = camera.width * supersample, camera.height * supersample
    u, v, depth = camera.pixels(np.asarray(vertices, dtype=np.float32))
    corners = np.stack([u, v], axis=1).astype(np.float64)[faces] * supersample
    keep = (depth[faces] > 1e-6).all(axis=1)
    pixel, face, weights = rasterize(corners[keep], width, height)
    depths = np.einsum("ij,ij->i", weights, depth[faces[keep]][face].astype(np.float64))
    buffer = np.full(width * height, np.inf, dtype=np.float32)
    np.minimum.at(buffer, pixel, depths.astype(np.float32))
    return buffer.reshape(height, width)


def rasterize(triangles: np.ndarray, width: int, height: int, chunk: int = 1 << 21):
    """The pixel centres (i + 0.5, j + 0.5) inside each 2D triangle (F, 3, 2) (either winding).

    Returns (flat pixel index j * width + i, triangle index, barycentric weights (N, 3))."""
    triangles = np.asarray(triangles, dtype=np.float64)
    low = np.floor(triangles.min(axis=1) - 0.5).astype(np.int64) + 1  # first centre >= the minimum
    high = np.floor(triangles.max(axis=1) - 0.5).astype(np.int64)
    low = np.maximum(low, 0)
    high = np.minimum(high, [width - 1, height - 1])
    spans = np.maximum(high - low + 1, 0)
    counts = spans[:, 0] * spans[:, 1]
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    usable = np.nonzero((counts > 0) & (np.abs(area) > 1e-12))[0]
    pixels, owners, barycentric = [], [], []
    # chunks of triangles whose candidate pixels fit in `chunk`
    bounds = np.cumsum(counts[usable])
    start = 0
    while start < len(usable):
        stop = int(np.searchsorted(bounds, (bounds[start - 1] if start else 0) + chunk, side="right"))
        stop = max(stop, start + 1)
        which = usable[start:stop]
        start = stop
        n = counts[which]
        owner = np.repeat(which, n)
        offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        span_x = spans[owner, 0]
        x = low[owner, 0] + offset % span_x
        y = low[owner, 1] + offset // span_x
        px, py = x + 0.5, y + 0.5
        ta, tb, tc = a[owner], b[owner], c[owner]
        w1 = ((px - ta[:, 0]) * (tc[:, 1] - ta[:, 1]) - (tc[:, 0] - ta[:, 0]) * (py - ta[:, 1])) / area[owner]
        w2 = ((tb[:, 0] - ta[:, 0]) * (py - ta[:, 1]) - (px - ta[:, 0]) * (tb[:, 1] - ta[:, 1])) / area[owner]
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        hit = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        pixels.append(y[hit] * width + x[hit])
        owners.append(owner[hit])
        barycentric.append(np.stack([w0[hit], w1[hit], w2[hit]], axis=1))
    if not pixels:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 3))
    pixel = np.concatenate(pixels)
    owner = np.concatenate(owners)
    weights = np.concatenate(barycentric)
    # a centre on an edge shared by two triangles: keep one
    pixel, first = np.unique(pixel, return_index=True)
    return pixel, owner[first], weights[first]


def fill_gutters(texture: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The unknown texels from the known ones around them (pull-push: means over ever coarser
    blocks of the known texels, then down again where a texel has none), the known ones kept."""
    if known.all() or not known.any():
        return texture
    levels = [(texture * known[..., None], known.astype(np.float32))]
    while max(levels[-1][1].shape) > 1:
        colour, weight = levels[-1]
        height, width = weight.shape
        padded_h, padded_w = height + height % 2, width + width % 2
        colour = np.pad(colour, ((0, padded_h - height), (0, padded_w - width), (0, 0)))
        weight = np.pad(weight, ((0, padded_h - height), (0, padded_w - width)))
        colour = colour.reshape(padded_h // 2, 2, padded_w // 2, 2, 3).sum(axis=(1, 3))
        weight = weight.reshape(padded_h // 2, 2, padded_w // 2, 2).sum(axis=(1, 3))
        levels.append((colour, weight))
    colour, weight = levels[-1]
    filled = colour / np.maximum(weight, 1e-12)[..., None]
    for colour, weight in reversed(levels[:-1]):
        height, width = weight.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:height, :width]
        mean = colour / np.maximum(weight, 1e-12)[..., None]
        filled = np.where((weight > 0)[..., None], mean, coarse)
    return np.where(known[..., None], texture, filled).astype(np.float32)
