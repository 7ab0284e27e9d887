"""The visual hull of the silhouettes as a signed distance field, searched coarse to fine.

For a point x and a view v, the silhouette's signed distance (pixels) at x's projection, times
x's depth over the focal length, is roughly x's distance (world units) to the cone that the
silhouette casts from the camera: negative inside. The hull's field is the largest of these over
the views (outside any one cone is outside the hull). The field changes by at most about one unit
per unit of distance, so a cell whose corners are all farther from zero than its diagonal holds
no surface: the search keeps only the cells near the surface, halving them level by level.
Only numpy: this runs inside Blender too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import cameras as camera_module
from .silhouettes import DISTANCE_BAND_PX
from .tetra import CORNER_OFFSETS

# Upper bound of the field's slope (world units per world unit). The cone distance has slope ~1;
# bilinear sampling and the depth factor add a little; more only costs time, never correctness.
FIELD_SLOPE = 1.5
# What the nearest lookups may add to a difference of two nodes' values (world units): half a
# lookup sample (a quarter pixel) at each, at depths up to about 3 units at 280 px focal length.
LOOKUP_SLACK = 0.006
# The coarsest level of the search has at least this many cells along the longest side.
COARSEST_CELLS = 16


@dataclass(frozen=True)
class ViewCamera:
    """One pinhole camera: OpenCV world-to-camera (x right, y down, z forward) and pixel K.
    Pixel (i, j) covers [i, i + 1) x [j, j + 1), as in Blender's renders."""

    world_to_camera: np.ndarray  # (4, 4)
    K: np.ndarray  # (3, 3)
    width: int
    height: int

    @classmethod
    def from_blender(cls, camera_to_world, K, width: int, height: int) -> "ViewCamera":
        """From a Blender camera matrix (x right, y up, looking along -z), as in cameras.json."""
        w2c = camera_module.blender_c2w_to_opencv_w2c(np.asarray(camera_to_world, dtype=np.float64))
        return cls(w2c, np.asarray(K, dtype=np.float64), int(width), int(height))

    @property
    def centre(self) -> np.ndarray:
        rotation, translation = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -rotation.T @ translation

    def pixels(self, points: np.ndarray):
        """(u, v, depth) float32 arrays of world points (N, 3): camera_module.project's pixel
        convention, in float32 and with the depth, because the hull search projects millions."""
        rotation = self.world_to_camera[:3, :3].astype(np.float32)
        translation = self.world_to_camera[:3, 3].astype(np.float32)
        in_camera = points.astype(np.float32, copy=False) @ rotation.T + translation
        depth = in_camera[:, 2]
        safe = np.where(depth > 1e-6, depth, np.float32(1e-6))
        u = in_camera[:, 0] / safe * np.float32(self.K[0, 0]) + np.float32(self.K[0, 2])
        v = in_camera[:, 1] / safe * np.float32(self.K[1, 1]) + np.float32(self.K[1, 2])
        return u, v, depth


def sample_bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray, outside=None) -> np.ndarray:
    """Values of `image` (H, W) or (H, W, C) at pixel positions (u, v) (pixel centres at +0.5).
    Positions off the image get `outside` when given, else the nearest edge pixel's value."""
    height, width = image.shape[:2]
    flat = image.reshape(height * width, -1) if image.ndim == 3 else image.reshape(-1)
    x = np.clip(u - np.float32(0.5), 0.0, width - 1.001).astype(np.float32)
    y = np.clip(v - np.float32(0.5), 0.0, height - 1.001).astype(np.float32)
    x0 = x.astype(np.int64)  # x >= 0: truncation is the floor
    y0 = y.astype(np.int64)
    fx = x - x0
    fy = y - y0
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    index = y0 * width + x0
    top = flat[index]
    top += (flat[index + 1] - top) * fx
    bottom = flat[index + width]
    bottom += (flat[index + width + 1] - bottom) * fx
    top += (bottom - top) * fy
    if outside is not None:
        off = (u < 0) | (v < 0) | (u > width) | (v > height)
        top[off] = outside
    return top


class HullField:
    """The signed distance field of the visual hull of some views (world units, negative inside).

    The silhouettes' distance images are looked up at twice their resolution (bilinear
    upsampling once, nearest lookups after): a quarter pixel is finer than the outline itself,
    and one lookup per point and view is what keeps the search fast."""

    def __init__(self, view_cameras, distance_images, _tables=None):
        self.cameras = list(view_cameras)
        self.distance_images = [np.ascontiguousarray(image, dtype=np.float32) for image in distance_images]
        self._tables = _tables or [_lookup_table(image) for image in self.distance_images]
        self._projections = [(camera.K @ camera.world_to_camera[:3, :]).astype(np.float32) for camera in self.cameras]
        # far-apart views first: a point outside the hull is usually found outside early
        self._order = _spread_order(len(self.cameras))

    def subset(self, keep) -> "HullField":
        return HullField([self.cameras[i] for i in keep], [self.distance_images[i] for i in keep],
                         [self._tables[i] for i in keep])

    def _view_distance(self, index: int, points_t: np.ndarray) -> np.ndarray:
        """Cone distances (world units) to view `index` of points given as (3, N) float32."""
        projection = self._projections[index]
        row_u, row_v, depth = projection[:, :3] @ points_t + projection[:, 3:]
        table, width = self._tables[index]
        inverse = np.float32(_UPSAMPLE) / np.maximum(depth, np.float32(1e-6))
        # +1: the table has a one-pixel border of "far outside" that every off-image point reads
        column = np.clip(row_u * inverse + np.float32(1.0), 0, width - 1).astype(np.int64)
        row = np.clip(row_v * inverse + np.float32(1.0), 0, len(table) // width - 1).astype(np.int64)
        pixels = table[row * width + column]
        pixels[depth <= 1e-6] = DISTANCE_BAND_PX  # behind the camera: outside its cone
        return pixels * np.maximum(depth, np.float32(1e-6)) * np.float32(1.0 / self.cameras[index].K[0, 0])

    def per_view(self, points: np.ndarray) -> np.ndarray:
        """(views, N) float32 distances of the points to each view's cone."""
        points_t = np.ascontiguousarray(np.asarray(points, dtype=np.float32).T)
        return np.stack([self._view_distance(i, points_t) for i in range(len(self.cameras))])

    def __call__(self, points: np.ndarray, cutoff: float | None = None) -> np.ndarray:
        """(N,) float32 hull field: the largest cone distance over the views. With `cutoff`,
        a point is given up as soon as one view puts it farther out than that (its value is then
        only known to exceed the cutoff), which saves most of the work outside the hull."""
        result = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), _CHUNK):
            chunk = np.ascontiguousarray(np.asarray(points[start:start + _CHUNK], dtype=np.float32).T)
            result[start:start + chunk.shape[1]] = self._evaluate(chunk, cutoff)
        return result

    def _evaluate(self, points_t, cutoff):
        result = np.full(points_t.shape[1], -np.inf, dtype=np.float32)
        active = None  # indices still at or below the cutoff; None = all
        subset = points_t
        for index in self._order:
            distance = self._view_distance(index, subset)
            if active is None:
                np.maximum(result, distance, out=result)
                values = result
            else:
                values = np.maximum(result[active], distance)
                result[active] = values
            if cutoff is not None:
                still = values <= cutoff
                if len(still) and still.mean() < 0.8:  # compact when enough points are done
                    active = np.nonzero(still)[0] if active is None else active[still]
                    subset = np.ascontiguousarray(points_t[:, active])
        return result


# Lookup tables hold the distance images at this many samples per pixel and axis.
_UPSAMPLE = 2


def _lookup_table(distance_image: np.ndarray):
    """(flat table, its width): the image upsampled bilinearly by _UPSAMPLE, with a border of
    one sample of DISTANCE_BAND_PX all round (where points off the image land)."""
    height, width = distance_image.shape
    fine_u = (np.arange(width * _UPSAMPLE, dtype=np.float32) + 0.5) / _UPSAMPLE
    fine_v = (np.arange(height * _UPSAMPLE, dtype=np.float32) + 0.5) / _UPSAMPLE
    u, v = np.meshgrid(fine_u, fine_v)
    fine = sample_bilinear(distance_image, u.ravel(), v.ravel()).reshape(height * _UPSAMPLE, width * _UPSAMPLE)
    table = np.pad(fine, 1, constant_values=np.float32(DISTANCE_BAND_PX))
    return table.ravel(), table.shape[1]


_CHUNK = 1 << 18


def _spread_order(count: int) -> list:
    """0 .. count-1 ordered so that each next view is far (in index) from the ones before."""
    order, step = [], count
    while step >= 1 and len(order) < count:
        order += [i for i in range(0, count, step) if i not in order]
        step //= 2
    return order + [i for i in range(count) if i not in order]


def common_view_box(view_cameras) -> tuple[np.ndarray, np.ndarray]:
    """A cube around the world origin that every camera sees whole: where the object must be."""
    half = math.inf
    for camera in view_cameras:
        distance = float(np.linalg.norm(camera.centre))
        margin_px = min(camera.K[0, 2], camera.width - camera.K[0, 2], camera.K[1, 2], camera.height - camera.K[1, 2])
        # a ball of radius r at distance d looks r * f / sqrt(d^2 - r^2) pixels wide: solve for r
        focal = camera.K[0, 0]
        half = min(half, distance * margin_px / math.hypot(focal, margin_px))
    return np.full(3, -half), np.full(3, half)


@dataclass
class GridSamples:
    """A regular grid and the field values at some of its nodes (the others are undefined)."""

    origin: np.ndarray  # (3,) world position of node (0, 0, 0)
    cell_size: float
    values: np.ndarray  # (nx + 1, ny + 1, nz + 1) float32
    known: np.ndarray | None = None  # flat bool per node: evaluated (None: all are)

    def node_points(self, nodes: np.ndarray) -> np.ndarray:
        return (self.origin + self.cell_size * nodes).astype(np.float32)

    @property
    def strides(self) -> np.ndarray:
        shape = self.values.shape[-3:]
        return np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)

    def corner_values(self, cells: np.ndarray) -> np.ndarray:
        """(M, 8) values at the corners of the cells (M, 3)."""
        corners = (cells @ self.strides)[:, None] + CORNER_OFFSETS @ self.strides
        return self.values.reshape(-1)[corners]


def full_grid(field, low, high, cells_per_side: int, cutoff=None) -> GridSamples:
    """The field at every node of a grid of cubes from `low` to (at least) `high`, with
    `cells_per_side` cells along the longest side. A field may give several values per point
    ((k, N) for N points): the grid's values are then (k, nx + 1, ny + 1, nz + 1)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    cell = float((high - low).max()) / cells_per_side
    shape = np.maximum(np.ceil((high - low) / cell - 1e-9).astype(np.int64), 1) + 1
    nodes = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    points = (low + cell * nodes).astype(np.float32)
    values = np.asarray(field(points) if cutoff is None else field(points, cutoff), dtype=np.float32)
    return GridSamples(low, cell, values.reshape(values.shape[:-1] + tuple(shape)))


def surface_cells(field, low, high, resolution: int):
    """Coarse to fine: the finest grid (`resolution` cells along the box's longest side) and its
    cells where the field changes sign, with only the nodes near the surface evaluated. The hull
    is cut off at the box (its outermost nodes count as outside), so the surface is closed.

    Returns (GridSamples, cells (M, 3) int64)."""
    levels = max(0, int(math.floor(math.log2(max(resolution, 1) / COARSEST_CELLS))))
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    fine_cell = float((high - low).max()) / resolution
    fine_shape = np.maximum(np.ceil((high - low) / fine_cell - 1e-9).astype(np.int64), 1)
    coarse_shape = -(-fine_shape // (1 << levels))  # ceil: the finest grid may reach past `high`
    coarse_cell = fine_cell * (1 << levels)
    grid = full_grid(field, low, low + coarse_shape * coarse_cell, int(coarse_shape.max()),
                     cutoff=_cutoff(coarse_cell))
    _outside_on_border(grid)
    cells = np.stack(np.meshgrid(*[np.arange(n) for n in coarse_shape], indexing="ij"), axis=-1).reshape(-1, 3)
    for _ in range(levels):
        corners = grid.corner_values(cells)
        # no zero inside a cell that has a corner farther from zero than the cell's diagonal allows
        near = np.abs(corners).max(axis=1) <= _cutoff(grid.cell_size)
        # except where the box's border cuts the hull (the border's values are set, not measured)
        on_border = np.any((cells == 0) | (cells == np.array(grid.values.shape) - 2), axis=1)
        near |= on_border & (corners < 0).any(axis=1)
        grid, cells = _refine(field, grid, cells[near])
    signs = grid.corner_values(cells) < 0
    crossing = signs.any(axis=1) & ~signs.all(axis=1)
    return grid, _close_surface(field, grid, cells[crossing])


# The six faces of a cell: (its four corners, the step to the neighbour across it).
_FACES = tuple((np.nonzero(CORNER_OFFSETS[:, axis] == side)[0], np.eye(3, dtype=np.int64)[axis] * (2 * side - 1))
               for axis in range(3) for side in (0, 1))


def _close_surface(field, grid: GridSamples, cells: np.ndarray) -> np.ndarray:
    """Add any cell that the surface enters through a face of a found cell but that the search
    missed (where the field is steeper than FIELD_SLOPE assumes), until the surface is closed."""
    cell_shape = np.array(grid.values.shape) - 1
    strides = np.array([cell_shape[1] * cell_shape[2], cell_shape[2], 1], dtype=np.int64)
    found = np.sort(cells @ strides)
    fresh = cells
    while len(fresh):
        inside = grid.corner_values(fresh) < 0
        steps = []
        for corners, step in _FACES:
            face = inside[:, corners]
            crossed = face.any(axis=1) & ~face.all(axis=1)
            steps.append(fresh[crossed] + step)
        candidates = np.concatenate(steps)
        candidates = candidates[np.all((candidates >= 0) & (candidates < cell_shape), axis=1)]
        linear = np.unique(candidates @ strides)
        where = np.minimum(np.searchsorted(found, linear), len(found) - 1)
        linear = linear[found[where] != linear]
        if not len(linear):
            break
        fresh = np.stack(np.unravel_index(linear, tuple(cell_shape)), axis=1)
        _evaluate_nodes(field, grid, (fresh[:, None, :] + CORNER_OFFSETS).reshape(-1, 3))
        found = np.sort(np.concatenate([found, linear]))
        cells = np.concatenate([cells, fresh])
    return cells


def _evaluate_nodes(field, grid: GridSamples, nodes: np.ndarray) -> None:
    """Evaluate the grid's nodes that are not known yet (the box's border counts as outside)."""
    shape = np.array(grid.values.shape)
    wanted = np.zeros(int(np.prod(shape)), dtype=bool)  # a dense mark: faster than sorting millions
    wanted[nodes @ grid.strides] = True
    if grid.known is not None:
        wanted &= ~grid.known
    linear = np.flatnonzero(wanted)
    if not len(linear):
        return
    nodes = np.stack(np.unravel_index(linear, tuple(shape)), axis=1)
    values = field(grid.node_points(nodes), _cutoff(grid.cell_size))
    on_border = np.any((nodes == 0) | (nodes == shape - 1), axis=1)
    values[on_border & (values < 0)] = np.float32(1e-6)  # the box cuts the hull: closed surface
    grid.values.reshape(-1)[linear] = values
    if grid.known is not None:
        grid.known[linear] = True


def _cutoff(cell_size: float) -> float:
    """How far from zero a corner may be while its cell can still hold surface: values beyond it
    need not be exact (a cell's corners are within its diagonal of any point inside it), plus
    what the nearest lookups may add (LOOKUP_SLACK)."""
    return FIELD_SLOPE * cell_size * math.sqrt(3.0) + LOOKUP_SLACK


def _outside_on_border(grid: GridSamples) -> None:
    values = grid.values
    for axis in range(3):
        for end in (0, -1):
            index = [slice(None)] * 3
            index[axis] = end
            face = values[tuple(index)]
            face[face < 0] = np.float32(1e-6)


def _refine(field, grid: GridSamples, cells: np.ndarray):
    """Halve the cells: the finer grid evaluates the corners of the cells' children."""
    shape = tuple(2 * (n - 1) + 1 for n in grid.values.shape)
    # np.empty/np.zeros leave untouched pages unallocated: only the band is ever written or read
    finer = GridSamples(grid.origin, grid.cell_size / 2.0, np.empty(shape, dtype=np.float32),
                        np.zeros(int(np.prod(shape)), dtype=bool))
    children = (2 * cells[:, None, :] + CORNER_OFFSETS).reshape(-1, 3)
    _evaluate_nodes(field, finer, (children[:, None, :] + CORNER_OFFSETS).reshape(-1, 3))
    return finer, children
