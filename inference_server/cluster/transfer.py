"""A generation's files between machines: read on the worker, written where they are served.

Workers of a cluster may have no disk in common with the process that keeps the output, so a
worker generates into a temporary folder and sends the files back as bytes (a set is a few MB);
the receiving side writes them with staging.Staged, so they appear all at once or not at all.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from ..view_set.staging import Staged, check_destination


def generate_files(pipeline, request, progress=None, should_cancel=None) -> dict:
    """Run `request` (pipeline.GenerationRequest) into a temporary folder; {relative path: bytes}."""
    with tempfile.TemporaryDirectory(prefix="glimpse-ray-") as temporary:
        output = Path(temporary) / "sets"
        local = dataclasses.replace(request, output=output, overwrite=False)
        pipeline.run(local, progress=progress, should_cancel=should_cancel)
        return {path.relative_to(output).as_posix(): path.read_bytes()
                for path in sorted(output.rglob("*")) if path.is_file()}


def write_files(files: dict, dest, overwrite: bool = False) -> Path:
    """Write `files` ({relative path: bytes}) as the folder `dest`, atomically; returns `dest`."""
    dest = check_destination(dest, overwrite)
    with Staged(dest, overwrite) as stage:
        for name, data in files.items():
            path = stage.folder / name
            if ".." in Path(name).parts or Path(name).is_absolute():
                raise ValueError(f"refusing a file name that leaves the set: {name!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return dest
