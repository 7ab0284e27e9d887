"""The zero level of a field sampled on a grid, as a closed triangle mesh: marching tetrahedra.

Each cube is cut into the six tetrahedra of the Freudenthal (Kuhn) subdivision, which is the same
in every cube, so neighbouring cubes cut their shared faces alike. The field is then piecewise
linear over the tetrahedra, and its zero set (no grid value is exactly zero: zero counts as
outside, and crossings never sit on a grid node) is a closed 2-manifold: every edge is shared by
exactly two triangles. Triangles are ordered counter-clockwise seen from outside (negative values
are inside), so normals point out. Only numpy: this runs inside Blender too.
"""
from __future__ import annotations

from itertools import permutations

import numpy as np

# Cube corner b sits at offset (b & 1, b >> 1 & 1, b >> 2 & 1).
CORNER_OFFSETS = np.array([[b & 1, (b >> 1) & 1, (b >> 2) & 1] for b in range(8)], dtype=np.int64)
# A crossing never sits closer than this (in edge lengths) to a grid node, so that the vertices
# on the edges around one node stay distinct.
_EDGE_MARGIN = 1e-3


def _freudenthal_tetrahedra() -> np.ndarray:
    """(6, 4) cube corners of each tetrahedron: a monotone path from corner 0 to corner 7."""
    tets = []
    for axes in permutations(range(3)):
        corner, path = 0, [0]
        for axis in axes:
            corner |= 1 << axis
            path.append(corner)
        tets.append(path)
    return np.array(tets, dtype=np.int64)


TETRAHEDRA = _freudenthal_tetrahedra()
_TET_EDGES = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], dtype=np.int64)


def _triangle_table() -> np.ndarray:
    """(6 tetrahedra, 16 inside patterns, 2 triangles, 3 tet edges), -1 where no triangle.

    Bit i of a pattern is set when tet vertex i is inside. Each triangle is oriented on the
    reference tetrahedron with the crossings at edge midpoints, so that its normal points from
    the inside vertices to the outside ones; moving the crossings along their edges never flips it.
    """
    table = np.full((6, 16, 2, 3), -1, dtype=np.int64)
    edge_of = {tuple(pair): index for index, pair in enumerate(_TET_EDGES.tolist())}

    def edge(a, b):
        return edge_of[(min(a, b), max(a, b))]

    for t, corners in enumerate(TETRAHEDRA):
        positions = CORNER_OFFSETS[corners].astype(np.float64)
        for pattern in range(1, 15):
            inside = [i for i in range(4) if pattern >> i & 1]
            outside = [i for i in range(4) if not pattern >> i & 1]
            if len(inside) in (1, 3):
                lone, others = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
                triangles = [[edge(lone, other) for other in others]]
            else:
                (i0, i1), (o0, o1) = inside, outside
                quad = [edge(i0, o0), edge(i0, o1), edge(i1, o1), edge(i1, o0)]
                triangles = [[quad[0], quad[1], quad[2]], [quad[0], quad[2], quad[3]]]
            gradient = positions[outside].mean(axis=0) - positions[inside].mean(axis=0)
            for slot, triangle in enumerate(triangles):
                mids = [positions[_TET_EDGES[e]].mean(axis=0) for e in triangle]
                normal = np.cross(mids[1] - mids[0], mids[2] - mids[0])
                if normal @ gradient < 0:
                    triangle = [triangle[0], triangle[2], triangle[1]]
                table[t, pattern, slot] = triangle
    return table


_TRIANGLES = _triangle_table()
def extract_surface(cells: np.ndarray, corner_values: np.ndarray, origin, cell_size: float,
                    node_shape) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of the zero level inside the given cells.

    cells: (M, 3) integer cell coordinates, each at most once; corner_values: (M, 8) field values
    at their corners (corner order of CORNER_OFFSETS), negative inside; origin: world position of
    node (0, 0, 0); node_shape: nodes per axis of the whole grid. Every cell whose corners differ
    in sign must be given (else the mesh has holes); others may be. Returns (vertices (V, 3)
    float64, faces (F, 3) int64).
    """
    cells = np.asarray(cells, dtype=np.int64)
    values = np.asarray(corner_values, dtype=np.float64)
    inside = values < 0.0
    crossing_cells = inside.any(axis=1) & ~inside.all(axis=1)
    cells, values, inside = cells[crossing_cells], values[crossing_cells], inside[crossing_cells]
    if not len(cells):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)

    # Each grid edge belongs to the cell at its lower node (it runs from corner 0 to corner d);
    # a crossing edge's cell has a sign change itself, so it is among the given cells.
    crossing = inside[:, :1] != inside[:, 1:]  # (M, 7): the edges from corner 0 to corner 1..7
    vertex_of = np.full(crossing.shape, -1, dtype=np.int64)
    vertex_of[crossing] = np.arange(int(crossing.sum()))
    rows, direction = np.nonzero(crossing)
    low_value, high_value = values[rows, 0], values[rows, direction + 1]
    t = np.clip(low_value / (low_value - high_value), _EDGE_MARGIN, 1.0 - _EDGE_MARGIN)
    offsets = CORNER_OFFSETS[direction + 1]
    vertices = np.asarray(origin, dtype=np.float64) + cell_size * (cells[rows] + t[:, None] * offsets)

    # Row of each cell by its position in the grid: a dense table, written only where needed.
    cell_shape = np.asarray(node_shape, dtype=np.int64) - 1
    strides = np.array([cell_shape[1] * cell_shape[2], cell_shape[2], 1], dtype=np.int64)
    linear = cells @ strides
    row_of = np.empty(int(np.prod(cell_shape)), dtype=np.int64)
    row_of[linear] = np.arange(len(cells))
    corner_steps = CORNER_OFFSETS @ strides

    faces = []
    for t_index, corners in enumerate(TETRAHEDRA):
        pattern = (inside[:, corners] * (1 << np.arange(4))).sum(axis=1)
        for slot in range(2):
            triangle_edges = _TRIANGLES[t_index, pattern, slot]  # (M, 3), -1 where none
            has = np.nonzero(triangle_edges[:, 0] >= 0)[0]
            if not len(has):
                continue
            pairs = _TET_EDGES[triangle_edges[has]]  # (n, 3, 2) tet-local vertex pairs
            corner_a = corners[pairs[..., 0]]  # the path's earlier corner: the edge's lower node
            corner_b = corners[pairs[..., 1]]
            owner = row_of[linear[has][:, None] + corner_steps[corner_a]]
            edge_direction = (corner_b - corner_a) - 1  # offsets are bits: b - a is the direction's bits
            faces.append(vertex_of[owner, edge_direction])
    return vertices, np.concatenate(faces)
