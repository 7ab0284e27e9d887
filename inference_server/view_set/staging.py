"""Where output goes, and how it appears there all at once.

The one rule for an existing output folder (the CLI, the Python API and the server share it):
a folder that does not exist or is empty is used; with `overwrite` an existing view set, or a
folder holding only sample_<k> view sets, is replaced as a whole; anything else is left alone.

Output is written into a hidden sibling `.<name>.partial-<pid>-<random>` and renamed to its
name when everything is in it, so a reader never sees a half-written result. Such folders of a
process that no longer runs (killed while writing) are removed by `remove_leftovers`. A single
file is replaced the same way, through `replaced_whole`.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..process_watch import process_alive

_PARTIAL = re.compile(r"^\..+" + re.escape(protocol.PARTIAL_MARK) + r"(?:(\d+)-)?[0-9a-f]+$")
_SAMPLE = re.compile("^" + re.escape(protocol.SAMPLE_FOLDER_PREFIX) + r"\d+$")


def _is_view_set(folder: Path) -> bool:
    return folder.is_dir() and not folder.is_symlink() and (folder / protocol.CAMERAS_FILE).is_file()


def _is_ours(folder: Path) -> bool:
    """A view set, or a folder of sample_<k> view sets: what a generation writes."""
    if _is_view_set(folder):
        return True
    if not folder.is_dir() or folder.is_symlink():
        return False
    entries = list(folder.iterdir())
    return bool(entries) and all(_SAMPLE.match(entry.name) and _is_view_set(entry) for entry in entries)


def _is_empty_folder(folder: Path) -> bool:
    return folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir())


def check_destination(dest, overwrite: bool = False, *, overwrite_hint: str = "allow overwriting") -> Path:
    """The absolute `dest` if output may go there (see the module's rule); InputError otherwise.

    `overwrite_hint` says how the person allows overwriting in their interface.
    """
    text = str(dest)
    if not text or "\x00" in text:
        raise InputError(f"the output folder {text!r} is not a usable path (empty, or with a NUL "
                         "character); choose another folder", code=protocol.ErrorCode.BAD_OUTPUT_DIR)
    dest = Path(dest).expanduser().absolute()
    if dest.name in ("", ".", ".."):
        raise InputError(f"{dest} is not a folder name for output; name a folder",
                         code=protocol.ErrorCode.BAD_OUTPUT_DIR)
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir() or dest.is_symlink():
            raise InputError(f"{dest} exists and is not a folder; choose another output folder",
                             code=protocol.ErrorCode.BAD_OUTPUT_DIR)
        if not _is_empty_folder(dest):
            if not overwrite:
                raise InputError(f"{dest} already exists and is not empty; {overwrite_hint} to replace "
                                 "the view set in it, or choose another output folder",
                                 code=protocol.ErrorCode.OUTPUT_EXISTS)
            if not _is_ours(dest):  # never delete something that we did not write
                raise InputError(f"{dest} exists and is not a view set (no {protocol.CAMERAS_FILE}); it is "
                                 "left alone: choose another output folder", code=protocol.ErrorCode.OUTPUT_EXISTS)
    _check_parent(dest)
    return dest


def _check_parent(dest: Path) -> None:
    """The nearest existing ancestor must be a writable folder (the rest is created)."""
    ancestor = dest.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"cannot make the output folder {dest}: {ancestor} is a file; choose another folder",
                         code=protocol.ErrorCode.BAD_OUTPUT_DIR)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {ancestor} (permission denied); choose another output folder",
                         code=protocol.ErrorCode.OUTPUT_NOT_WRITABLE)


class Staged:
    """`with Staged(dest, overwrite) as stage:` write into `stage.folder`; on a clean exit it
    becomes `dest` in one rename, on an exception (or cancel) it is removed.

    Call `check_destination` first; the rule is checked again at the rename.
    """

    def __init__(self, dest, overwrite: bool = False):
        self.dest = Path(dest).expanduser().absolute()
        self.overwrite = overwrite
        self.folder = self.dest.parent / f".{self.dest.name}{protocol.PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}"

    def __enter__(self) -> "Staged":
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.dest.parent)
        self.folder.mkdir()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        try:
            self._move_into_place()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def _move_into_place(self) -> None:
        dest = check_destination(self.dest, self.overwrite)  # again: another writer may have been quicker
        if _is_empty_folder(dest):
            dest.rmdir()
        if not dest.exists():
            os.rename(self.folder, dest)
            return
        old = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
        os.rename(dest, old)
        try:
            os.rename(self.folder, dest)
        except BaseException:
            os.rename(old, dest)  # put the previous output back
            raise
        shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(folder) -> list:
    """Remove the hidden partial folders in `folder` whose writing process no longer runs."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if not match or not entry.is_dir() or entry.is_symlink():
            continue
        pid = match.group(1)
        if pid is not None and process_alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def replaced_whole(path, *, keep_suffix: bool = False):
    """Yield a hidden temporary path beside `path` to write; when the block ends it is renamed onto
    `path`, and when the block fails it is removed, so `path` holds its old or its new content and
    nothing else is left behind. `keep_suffix`: the temporary name ends in the suffix of `path`
    (for writers that choose the format by it)."""
    path = Path(path)
    suffix = path.suffix if keep_suffix else ""
    partial = path.with_name(f".{path.name}{protocol.PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
