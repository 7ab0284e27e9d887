"""A file that `mesh` (cameras.json's mesh entry) or `batch` (manifest.jsonl) replaces is its old
or its new content after a failed write, and no temporary file is left beside it."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_server import protocol
from inference_server.generation.batch import MANIFEST_FILE, run_batch
from inference_server.generation.masks import write_mesh_if_asked
from view_set_files import example_metadata, write_view_set


class MeshJob:
    """A generation request as the set writers see it: its job options."""
    options = {"mesh": True, "mesh_resolution": 64}


def fill_the_disk(monkeypatch):
    """From now on, writing text stops half-way with ENOSPC, as on a full disk."""
    real_write_text = Path.write_text

    def write_half(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", write_half)


def test_mesh_entry_failing_to_write_leaves_cameras_json_as_it_was(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(16)]
    folder = write_view_set(tmp_path / "noise", noise, noise[0], example_metadata())
    before = sorted(path.name for path in folder.iterdir())
    cameras_json = (folder / protocol.CAMERAS_FILE).read_text(encoding="utf-8")
    fill_the_disk(monkeypatch)
    with pytest.raises(OSError):  # no mesh from noise: the entry that says why cannot be written
        write_mesh_if_asked(folder, noise, MeshJob())
    assert (folder / protocol.CAMERAS_FILE).read_text(encoding="utf-8") == cameras_json
    assert sorted(path.name for path in folder.iterdir()) == before


def test_batch_manifest_failing_to_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    fill_the_disk(monkeypatch)
    with pytest.raises(OSError):
        run_batch([], tmp_path, lambda items: iter(()), show_progress=False)
    assert [path.name for path in tmp_path.iterdir()] == [MANIFEST_FILE]
