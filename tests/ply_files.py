"""Reading PLY files back, for the tests of the proxy mesh (the product only writes them:
inference_server/proxy_mesh/ply.py). Binary little-endian and ASCII."""
from pathlib import Path

import numpy as np

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


def read_ply(path) -> dict:
    """The vertex properties (name -> (V,) array) and "faces" ((F, 3) int64; polygons with more
    corners are fanned into triangles) of a PLY file, binary little-endian or ASCII."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError(f"{path} is not a PLY file (no 'ply' ... 'end_header' header)")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    file_format, elements = None, []  # [name, count, [(property, type or ("list", count, item))]]
    for line in lines:
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            file_format = words[1]
        elif words[0] == "element":
            elements.append([words[1], int(words[2]), []])
        elif words[0] == "property" and words[1] == "list":
            elements[-1][2].append((words[4], ("list", _PLY_TYPES[words[2]], _PLY_TYPES[words[3]])))
        elif words[0] == "property":
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
    if file_format not in ("binary_little_endian", "ascii"):
        raise ValueError(f"{path}: PLY format {file_format!r} is not supported (binary_little_endian or ascii)")
    reader = _BinaryReader(data, body_start) if file_format != "ascii" else _AsciiReader(data[body_start:])
    result = {}
    for name, count, properties in elements:
        values = reader.read(count, properties)
        if name == "vertex":
            result.update(values)
        elif name == "face":
            result["faces"] = _triangles(values.get("vertex_indices", values.get("vertex_index", [])))
    result.setdefault("faces", np.zeros((0, 3), dtype=np.int64))
    return result


def _triangles(polygons) -> np.ndarray:
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        return polygons.astype(np.int64)
    fans = [(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)]
    return np.asarray(fans, dtype=np.int64).reshape(-1, 3)


class _BinaryReader:
    def __init__(self, data: bytes, offset: int):
        self.data, self.offset = data, offset

    def read(self, count, properties) -> dict:
        if all(not isinstance(kind, tuple) for _, kind in properties):
            dtype = np.dtype([(name, "<" + kind) for name, kind in properties])
            records = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
            self.offset += dtype.itemsize * count
            return {name: records[name].copy() for name, _ in properties}
        if len(properties) == 1:  # faces: one list each; fast path for all-triangle lists
            name, (_, count_type, item_type) = properties[0]
            fixed = np.dtype([("n", "<" + count_type), ("items", "<" + item_type, (3,))])
            if count and self.offset + fixed.itemsize * count <= len(self.data):
                records = np.frombuffer(self.data, dtype=fixed, count=count, offset=self.offset)
                if (records["n"] == 3).all():
                    self.offset += fixed.itemsize * count
                    return {name: records["items"].astype(np.int64)}
        return self._read_slowly(count, properties)

    def _read_slowly(self, count, properties) -> dict:
        columns = {name: [] for name, _ in properties}
        for _ in range(count):
            for name, kind in properties:
                if isinstance(kind, tuple):
                    n = int(self._scalar(kind[1]))
                    columns[name].append([self._scalar(kind[2]) for _ in range(n)])
                else:
                    columns[name].append(self._scalar(kind))
        return {name: (np.asarray(v) if not isinstance(kind, tuple) else v)
                for (name, kind), v in zip(properties, columns.values())}

    def _scalar(self, kind):
        dtype = np.dtype("<" + kind)
        value = np.frombuffer(self.data, dtype=dtype, count=1, offset=self.offset)[0]
        self.offset += dtype.itemsize
        return value


class _AsciiReader:
    def __init__(self, body: bytes):
        self.words = iter(body.split())

    def read(self, count, properties) -> dict:
        columns = {name: [] for name, _ in properties}
        for _ in range(count):
            for name, kind in properties:
                if isinstance(kind, tuple):
                    n = int(next(self.words))
                    columns[name].append([int(next(self.words)) for _ in range(n)])
                else:
                    columns[name].append(float(next(self.words)))
        return {name: (np.asarray(values, dtype=kind) if not isinstance(kind, tuple) else values)
                for (name, kind), values in zip(properties, columns.values())}
