"""Reading a view set on disk: which files it holds."""
from pathlib import Path

from .. import protocol


def set_files(folder: Path) -> tuple:
    """The contract's files in their order, then any a set writer added (e.g. mesh.ply)."""
    extra = sorted(path.name for path in Path(folder).iterdir() if path.name not in protocol.SET_FILES)
    return (*protocol.SET_FILES, *extra)
