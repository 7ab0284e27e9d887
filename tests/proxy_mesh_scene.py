"""A known coloured scene (a sphere on a box) seen by the sixteen SyncDreamer cameras, ray cast in
numpy: views with exact silhouettes and colours, for the proxy-mesh tests."""
from __future__ import annotations

import numpy as np

from inference_server import cameras
from inference_server.proxy_mesh import ViewCamera

# (kind, parameters, colour): the sphere sits on top of the box
SPHERE = ("sphere", (np.array([0.0, 0.0, 0.12]), 0.2), (200, 40, 40))
BOX = ("box", (np.array([-0.25, -0.2, -0.3]), np.array([0.25, 0.2, -0.05])), (40, 90, 210))
SCENE = (SPHERE, BOX)
# Separate objects with a thin ring floating above them, tilted (its hole seen by some views):
# a clean scene on which no view disagrees with the others.
SEPARATE = (
    ("sphere", (np.array([0.18, 0.12, -0.12]), 0.13), (60, 170, 80)),
    ("box", (np.array([-0.3, -0.25, -0.3]), np.array([-0.08, -0.03, -0.1])), (230, 190, 40)),
    ("sphere", (np.array([-0.2, 0.22, -0.2]), 0.08), (60, 110, 210)),
    ("torus", (np.array([0.0, 0.0, 0.22]), 0.16, 0.018, np.array([0.6, 0.0, 0.8])), (240, 130, 40)),
)


def _hit(kind, parameters, origins, directions):
    """Ray parameter of the first hit (inf where missed)."""
    if kind == "sphere":
        centre, radius = parameters
        offset = origins - centre
        b = np.einsum("ij,ij->i", offset, directions)
        c = np.einsum("ij,ij->i", offset, offset) - radius * radius
        disc = b * b - c
        t = -b - np.sqrt(np.maximum(disc, 0.0))
        return np.where((disc >= 0) & (t > 0), t, np.inf)
    if kind == "torus":
        return _march(lambda points: _torus_distance(parameters, points), parameters[0],
                      parameters[1] + parameters[2], origins, directions)
    low, high = parameters
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (low - origins) / directions
        t2 = (high - origins) / directions
    near = np.nanmax(np.minimum(t1, t2), axis=1)
    far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((near <= far) & (near > 0), near, np.inf)


def _torus_distance(parameters, points):
    centre, major, minor, axis = parameters
    axis = axis / np.linalg.norm(axis)
    offset = points - centre
    along = offset @ axis
    across = np.linalg.norm(offset - along[:, None] * axis, axis=1)
    return np.hypot(across - major, along) - minor


def _march(distance, centre, radius, origins, directions, steps=160):
    """Sphere tracing of a signed distance from the ray's entry into the bounding sphere."""
    offset = origins - centre
    b = np.einsum("ij,ij->i", offset, directions)
    disc = b * b - (np.einsum("ij,ij->i", offset, offset) - radius * radius)
    t = np.where(disc >= 0, -b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
    live = np.nonzero(np.isfinite(t))[0]
    t_live = t[live]
    for _ in range(steps):
        step = distance(origins[live] + t_live[:, None] * directions[live])
        t_live = t_live + step
        done = step < 1e-5
        t[live[done]] = t_live[done]
        far = t_live > -b[live] + radius + 1e-3
        t[live[far]] = np.inf
        keep = ~done & ~far
        live, t_live = live[keep], t_live[keep]
        if not len(live):
            break
    t[live] = np.inf
    return t


def render_view(w2c: np.ndarray, K: np.ndarray, size: int = cameras.IMAGE_SIZE, scene=SCENE) -> np.ndarray:
    """(size, size, 4) uint8 RGBA: the scene's flat colours on a transparent background."""
    c2w = np.linalg.inv(w2c)
    j, i = np.mgrid[0:size, 0:size]
    pixels = np.stack([i + 0.5, j + 0.5, np.ones_like(i, dtype=float)], axis=-1).reshape(-1, 3)
    directions = pixels @ np.linalg.inv(K).T @ c2w[:3, :3].T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    origins = np.broadcast_to(c2w[:3, 3], directions.shape)
    hits = np.stack([_hit(kind, parameters, origins, directions) for kind, parameters, _ in scene])
    first = np.argmin(hits, axis=0)
    any_hit = np.isfinite(hits.min(axis=0))
    image = np.full((size * size, 4), 255, dtype=np.uint8)
    image[:, 3] = 0
    for index, (_, _, colour) in enumerate(scene):
        chosen = any_hit & (first == index)
        image[chosen, :3] = colour
        image[chosen, 3] = 255
    return image.reshape(size, size, 4)


def inside(points: np.ndarray, scene=SCENE) -> np.ndarray:
    """(N,) bool: the points inside any primitive of the scene."""
    result = np.zeros(len(points), dtype=bool)
    for kind, parameters, _ in scene:
        if kind == "sphere":
            centre, radius = parameters
            result |= np.linalg.norm(points - centre, axis=1) <= radius
        elif kind == "torus":
            result |= _torus_distance(parameters, points) <= 0
        else:
            low, high = parameters
            result |= np.all((points >= low) & (points <= high), axis=1)
    return result


def target_views(scene=SCENE):
    """(images, ViewCameras) of the scene from the sixteen target cameras."""
    w2c, _, K = cameras.target_cameras()
    images = [render_view(pose, K, scene=scene) for pose in w2c]
    return images, [ViewCamera(pose, K, cameras.IMAGE_SIZE, cameras.IMAGE_SIZE) for pose in w2c]
