"""From views and cameras to a coloured proxy mesh: silhouettes, rejection of a view that
disagrees with the others, the hull searched coarse to fine, its surface, its colours."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..protocol import JOB_OPTION_SPECS
from . import colours as colour_module
from .hull import HullField, ViewCamera, common_view_box, full_grid, surface_cells
from .silhouettes import BACKGROUND_TOLERANCE, as_float_image, signed_distance, silhouette
from .tetra import extract_surface

_RESOLUTION = JOB_OPTION_SPECS["mesh_resolution"]  # the protocol's range, for every entry point
RESOLUTIONS = (int(_RESOLUTION.low), int(_RESOLUTION.high))  # the fewest and most cells per side
DEFAULT_RESOLUTION = int(_RESOLUTION.default)
# The grid on which views are compared with each other and the object's box is found.
CHECK_CELLS = 48
# A view is rejected when the share of the others' hull that falls outside its silhouette (by
# more than CHECK_TOLERANCE_CELLS) is far outside the spread of the views' shares: above the median
# by more than REJECT_SPREADS robust spreads (1.4826 x the median absolute deviation, the standard
# deviation of well-behaved shares), and above REJECT_SHARE whatever the spread. The spread is at
# least MIN_SPREAD: on a clean scene most shares are exactly zero, and a few cells that a thin
# part leaves in some views must not look infinitely far out.
REJECT_SHARE = 0.005
REJECT_SPREADS = 8.0
MIN_SPREAD = 0.001
CHECK_TOLERANCE_CELLS = 0.5
MAX_REJECTED = 4
# The object sits inside the views with a margin: a silhouette that covers more than this share of
# a view's outermost pixels means the background was not told apart (not white, not transparent).
MAX_BORDER_SHARE = 0.5


class MeshError(ValueError):
    """The views cannot give a mesh; the message says why and what to do."""


@dataclass
class ProxyMesh:
    """A closed triangle mesh in the cameras' world frame, with a colour per vertex."""

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    normals: np.ndarray  # (V, 3) float32, pointing out
    colours: np.ndarray  # (V, 3) uint8
    unseen: np.ndarray  # (V,) bool: no view sees the vertex; its colour comes from neighbours
    rejected_views: tuple = ()  # indices of views left out because they disagree with the rest
    resolution: int = DEFAULT_RESOLUTION
    timings: dict = field(default_factory=dict)  # seconds per stage


def build_proxy_mesh(images, view_cameras, resolution: int = DEFAULT_RESOLUTION, masks=None,
                     reject_views: bool = True, tolerance: float = BACKGROUND_TOLERANCE) -> ProxyMesh:
    """The coloured visual hull of the object in `images`.

    images: one (H, W, 3|4) array per view (uint8, or float 0..1); view_cameras: a `ViewCamera`
    per view; resolution: grid cells along the longest side of the object's box; masks: optional
    (H, W) object masks per view (None entries allowed), else alpha or the white background
    (the near-white region connected to the border; `tolerance`: how far below the border's white
    a pixel may be and still be background, 0..1).
    """
    started = time.perf_counter()
    timings = {}
    if not isinstance(resolution, (int, np.integer)) or not RESOLUTIONS[0] <= resolution <= RESOLUTIONS[1]:
        raise MeshError(f"resolution must be a whole number from {RESOLUTIONS[0]} to {RESOLUTIONS[1]} "
                        f"(cells a side; 64, 128 or 256 are usual), got {resolution!r}")
    images = [as_float_image(image) for image in images]
    view_cameras = list(view_cameras)
    if len(images) != len(view_cameras) or len(images) < 2:
        raise MeshError(f"need one camera per view and at least two views, got {len(images)} views "
                        f"and {len(view_cameras)} cameras")
    masks = list(masks) if masks is not None else [None] * len(images)
    if len(masks) != len(images):
        raise MeshError(f"got {len(masks)} masks for {len(images)} views")
    for index, (image, camera) in enumerate(zip(images, view_cameras)):
        if image.shape[:2] != (camera.height, camera.width):
            raise MeshError(f"view {index} is {image.shape[1]}x{image.shape[0]} pixels but its camera "
                            f"is {camera.width}x{camera.height}")
    shapes = [silhouette(image, mask, tolerance) for image, mask in zip(images, masks)]
    empty = [index for index, shape in enumerate(shapes) if not shape.any()]
    if empty:
        raise MeshError(f"no object in view{'s' if len(empty) > 1 else ''} {_listing(empty)}: the whole "
                        "view is background (transparent or white). A proxy mesh needs the object in "
                        "every view: generate the set again, or give masks of the object")
    full = [index for index, shape in enumerate(shapes) if _border_share(shape) > MAX_BORDER_SHARE]
    if full:
        raise MeshError(f"no background in view{'s' if len(full) > 1 else ''} {_listing(full)}: the object "
                        "cannot be told apart from a background that is neither transparent nor white. "
                        "Give masks of the object, or views with a transparent or white background")
    distances = [signed_distance(shape) for shape in shapes]
    timings["silhouettes"] = time.perf_counter() - started

    field_all = HullField(view_cameras, distances)
    low, high = common_view_box(view_cameras)
    kept, low, high = _check_views(field_all, low, high, reject_views)
    rejected = tuple(index for index in range(len(images)) if index not in kept)
    timings["check"] = time.perf_counter() - started - sum(timings.values())

    grid, cells = surface_cells(field_all.subset(kept), low, high, int(resolution))
    vertices, faces = extract_surface(cells, grid.corner_values(cells), grid.origin, grid.cell_size,
                                      grid.values.shape)
    timings["surface"] = time.perf_counter() - started - sum(timings.values())
    if not len(faces):
        raise MeshError("the views' silhouettes leave no common volume; check that the views belong "
                        "to one set and that their cameras are right")

    normals = colour_module.vertex_normals(vertices, faces)
    colours, seen = colour_module.view_colours(
        vertices, normals, [images[i] for i in kept], [view_cameras[i] for i in kept],
        [distances[i] for i in kept], grid.cell_size)
    colours = colour_module.fill_unseen(colours, seen, faces)
    timings["colours"] = time.perf_counter() - started - sum(timings.values())
    timings["total"] = time.perf_counter() - started
    return ProxyMesh(
        vertices=vertices.astype(np.float32), faces=faces, normals=normals,
        colours=np.clip(np.round(colours * 255.0), 0, 255).astype(np.uint8), unseen=~seen,
        rejected_views=rejected, resolution=int(resolution), timings=timings)


def _check_views(hull_field: HullField, low, high, reject_views: bool):
    """Leave out views that disagree with the hull of all the others, then find the object's box.

    Returns (kept view indices, box low, box high)."""
    grid = full_grid(hull_field.per_view, low, high, CHECK_CELLS)
    per_view = grid.values.reshape(len(hull_field.cameras), -1)
    kept = list(range(len(hull_field.cameras)))
    tolerance = CHECK_TOLERANCE_CELLS * grid.cell_size
    while reject_views and len(hull_field.cameras) - len(kept) < MAX_REJECTED and len(kept) > 3:
        # two ways to disagree: cutting away what the others keep (a shifted view, a missing part),
        # or showing what the others' hull does not (a foreign blob); the view that stands out most
        shares = (_outside_shares(per_view[kept], tolerance),
                  _uncovered_shares(hull_field, kept, per_view[kept], grid.node_points(_all_nodes(grid))))
        standing = [_standing(share) for share in shares]
        measure = int(np.argmax([stand.max() for stand in standing]))
        worst = int(np.argmax(standing[measure]))
        if not is_outlier(shares[measure], worst):
            break
        kept.pop(worst)
    inside = per_view[kept].max(axis=0) < 0
    if not inside.any():
        raise MeshError("the views' silhouettes leave no common volume; check that the views belong to "
                        "one set and that their cameras are right")
    shape = np.array(grid.values.shape[1:])
    nodes = np.argwhere(inside.reshape(tuple(shape)))
    margin = 1.5
    box_low = grid.origin + grid.cell_size * (nodes.min(axis=0) - margin)
    box_high = grid.origin + grid.cell_size * (nodes.max(axis=0) + margin)
    return kept, np.maximum(box_low, low), np.minimum(box_high, high)


def is_outlier(shares: np.ndarray, index: int) -> bool:
    """Whether view `index`'s share is far outside the spread of all the views' shares (median
    and median absolute deviation: one bad view cannot widen the spread that judges it)."""
    median = float(np.median(shares))
    spread = max(1.4826 * float(np.median(np.abs(shares - median))), MIN_SPREAD)
    return bool(shares[index] > max(REJECT_SHARE, median + REJECT_SPREADS * spread))


def _standing(shares: np.ndarray) -> np.ndarray:
    """How far each share lies above the median, in robust spreads."""
    median = float(np.median(shares))
    spread = max(1.4826 * float(np.median(np.abs(shares - median))), MIN_SPREAD)
    return (shares - median) / spread


def _all_nodes(grid) -> np.ndarray:
    shape = grid.values.shape[-3:]
    return np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)


# Silhouettes are compared with the others' hull in blocks of this many pixels a side.
COVER_BLOCK_PX = 4


def _uncovered_shares(hull_field: HullField, kept, per_view: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each view: the share of its silhouette (in blocks of COVER_BLOCK_PX) that the other
    views' hull, projected into it, does not reach within a block."""
    order = np.argsort(per_view, axis=0)
    largest = np.take_along_axis(per_view, order[-1:], axis=0)[0]
    second = np.take_along_axis(per_view, order[-2:-1], axis=0)[0]
    shares = np.zeros(len(per_view))
    for slot, view in enumerate(kept):
        others = np.where(order[-1] == slot, second, largest) < 0
        camera = hull_field.cameras[view]
        rows, columns = -(-camera.height // COVER_BLOCK_PX), -(-camera.width // COVER_BLOCK_PX)
        u, v, _ = camera.pixels(points[others])
        block_u = np.clip((u / COVER_BLOCK_PX).astype(np.int64), 0, columns - 1)
        block_v = np.clip((v / COVER_BLOCK_PX).astype(np.int64), 0, rows - 1)
        reached = np.zeros((rows + 2, columns + 2), dtype=bool)
        reached[block_v + 1, block_u + 1] = True
        near = np.zeros_like(reached)  # within a block of a reached one
        for dv in (-1, 0, 1):
            for du in (-1, 0, 1):
                near[1:-1, 1:-1] |= reached[1 + dv:rows + 1 + dv, 1 + du:columns + 1 + du]
        inside = hull_field.distance_images[view] < 0
        padded = np.zeros((rows * COVER_BLOCK_PX, columns * COVER_BLOCK_PX), dtype=bool)
        padded[:inside.shape[0], :inside.shape[1]] = inside
        blocks = padded.reshape(rows, COVER_BLOCK_PX, columns, COVER_BLOCK_PX).all(axis=(1, 3))
        if blocks.any():
            shares[slot] = float((blocks & ~near[1:-1, 1:-1]).sum()) / float(blocks.sum())
    return shares


def _outside_shares(per_view: np.ndarray, tolerance: float) -> np.ndarray:
    """For each view: the share of the other views' hull that lies outside its own cone."""
    order = np.argsort(per_view, axis=0)
    largest = np.take_along_axis(per_view, order[-1:], axis=0)[0]
    second = np.take_along_axis(per_view, order[-2:-1], axis=0)[0]
    shares = np.zeros(len(per_view))
    for view in range(len(per_view)):
        others = np.where(order[-1] == view, second, largest)
        inside_others = others < 0
        count = int(inside_others.sum())
        if count:
            shares[view] = float((per_view[view][inside_others] > tolerance).sum()) / count
    return shares


def _border_share(shape: np.ndarray) -> float:
    """The share of the image's outermost pixels that the silhouette covers."""
    border = np.concatenate([shape[0], shape[-1], shape[1:-1, 0], shape[1:-1, -1]])
    return float(border.mean())


def _listing(indices) -> str:
    return ", ".join(str(i) for i in indices)
