"""PLY files of proxy meshes: positions, normals, 8-bit colours and the `unseen` flag per vertex,
triangles as vertex index lists, written binary little-endian (tests/ply_files.py reads them back).
Only numpy and the standard library: this runs inside Blender too."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

UNSEEN_PROPERTY = "unseen"  # 1 on vertices that no view sees (their colour is filled in)

_VERTEX_DTYPE = np.dtype([
    ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
    ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
    ("red", "u1"), ("green", "u1"), ("blue", "u1"), (UNSEEN_PROPERTY, "u1"),
])
_FACE_DTYPE = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])


def write_ply(path, vertices, faces, colours, unseen, normals=None, comment: str = "") -> Path:
    """Write a binary PLY atomically (a temporary file, then a rename) and return its path."""
    path = Path(path)
    vertices = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    records = np.zeros(len(vertices), dtype=_VERTEX_DTYPE)
    for i, name in enumerate("xyz"):
        records[name] = vertices[:, i]
    if normals is not None:
        for i, name in enumerate(("nx", "ny", "nz")):
            records[name] = np.asarray(normals, dtype=np.float32)[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        records[name] = np.asarray(colours, dtype=np.uint8)[:, i]
    records[UNSEEN_PROPERTY] = np.asarray(unseen, dtype=bool)
    face_records = np.zeros(len(faces), dtype=_FACE_DTYPE)
    face_records["count"] = 3
    face_records["indices"] = faces
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment {line}" for line in comment.splitlines() if line]
    header += [f"element vertex {len(vertices)}"]
    header += [f"property {_type_name(records.dtype[name])} {name}" for name in records.dtype.names]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    return write_atomically(path, [("\n".join(header) + "\n").encode("ascii"), records.tobytes(),
                                   face_records.tobytes()])


def write_atomically(path, chunks) -> Path:
    """Write the byte strings `chunks` into `path` whole or not at all (a temporary file beside
    it, then a rename) and return the path."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with open(partial, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def _type_name(dtype) -> str:
    return {"f4": "float", "u1": "uchar"}[dtype.str.lstrip("<|")]
