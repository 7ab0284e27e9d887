"""Copy a finished job's view sets from a (remote) server into a local folder.

Each sample becomes one folder, written under a temporary name and renamed when complete,
like the server does (docs/contracts.md §2), so a reader never sees half a set.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

from .bundled import protocol


def _safe_name(name: str) -> str:
    """Refuse names that would leave the target folder (a server is not trusted with paths)."""
    name = str(name)
    if not name or name in (".", "..") or PurePosixPath(name).name != name or "\\" in name:
        raise ValueError(f"The server sent an unsafe file name {name!r}; the download was stopped.")
    return name


def _local_name(server_folder: str) -> str:
    """'/srv/out/cat_ab12' -> 'cat_ab12'; '/srv/out/cat_ab12/sample_1' -> 'cat_ab12_sample_1'."""
    path = PurePosixPath(str(server_folder).replace("\\", "/"))
    if path.name.startswith(protocol.SAMPLE_FOLDER_PREFIX) and path.parent.name:
        return f"{path.parent.name}_{path.name}"
    return path.name


def _unique_folder(parent: Path, name: str) -> Path:
    candidate, n = parent / name, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}_{n}"
    return candidate


def download_sets(client, job: dict, dest_root: str | Path) -> list:
    """Download every output file of the finished `job`; return the local set folders by sample.

    Each file is streamed to disk, no larger than the file list says (client.download_file)."""
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    by_sample: dict = {}  # sample -> [(file name, size the list gives or None)]
    for entry in client.list_files(job["id"]):
        size = entry.get("size")
        by_sample.setdefault(int(entry["sample"]), []).append(
            (_safe_name(entry["name"]), size if isinstance(size, int) and not isinstance(size, bool) else None))
    server_names = {int(out["sample"]): _local_name(out.get("folder", "")) for out in job.get("outputs") or []}
    folders = []
    for sample in sorted(by_sample):
        name = _safe_name(server_names.get(sample) or f"{job['id']}_sample{sample:02d}")
        partial = dest_root / f".{name}{protocol.PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}"
        partial.mkdir()
        try:
            for file_name, size in by_sample[sample]:
                client.download_file(job["id"], sample, file_name, partial / file_name, size=size)
            final = _unique_folder(dest_root, name)
            partial.rename(final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        folders.append(str(final))
    if not folders:
        raise ValueError(f"Job {job['id']} finished but the server lists no files for it.")
    return folders
