"""The one pipeline, in process with the tiny random-weight model: the output rule, atomic
multi-sample output (also when the disk fills up after the first set), cancel, set writers."""
import contextlib
import errno
import shutil
import subprocess
import uuid

import pytest

from inference_server.generation import pipeline as pipeline_module
from inference_server.errors import InputError, SetupError
from inference_server.generation.params import parse_params
from inference_server.generation.pipeline import GenerationRequest, Pipeline
from inference_server.generation.progress import GenerationCancelled
from inference_server.protocol import MESH_FILE, SET_FILES
from inference_server.generation.service import SyncDreamerService

pytestmark = pytest.mark.slow
FAST = {"steps": 1, "batch_views": 16, "cfg_scale": 1.0, "background": "keep"}


@pytest.fixture(scope="module")
def pipeline():
    service = SyncDreamerService(random_weights=True, device="cpu")
    service.load_model()
    return Pipeline(service)


def request(image, output, **params):
    return GenerationRequest(image=image, output=output, params=parse_params({**FAST, **params}), input_name="cat.png")


def visible(root) -> list:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_one_and_several_samples(pipeline, cat_png, tmp_path):
    [one] = pipeline.run(request(cat_png, tmp_path / "one"))
    assert one == tmp_path / "one" and sorted(p.name for p in one.iterdir()) == sorted(SET_FILES)
    events = []
    folders = pipeline.run(request(cat_png, tmp_path / "two", samples=2), progress=events.append)
    assert folders == [tmp_path / "two" / "sample_0", tmp_path / "two" / "sample_1"]
    assert all(sorted(p.name for p in folder.iterdir()) == sorted(SET_FILES) for folder in folders)
    assert [event.phase for event in events][0] == "preparing" and events[-1].phase == "writing"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_output_rule_is_checked_before_the_model_runs(pipeline, cat_png, tmp_path):
    occupied = tmp_path / "mine"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="pass --overwrite") as refused:
        pipeline_module.check_request(request(cat_png, occupied), overwrite_hint="pass --overwrite")
    assert refused.value.code == "output_exists"
    overwrite = GenerationRequest(image=cat_png, output=occupied, params=parse_params(FAST), overwrite=True)
    with pytest.raises(InputError, match="not a view set"):
        pipeline.run(overwrite)  # never replaces what a generation did not write
    assert (occupied / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert pipeline.run(request(cat_png, tmp_path / "empty")) == [tmp_path / "empty"]
    again = GenerationRequest(image=cat_png, output=tmp_path / "empty", params=parse_params({**FAST, "seed": 3}),
                              overwrite=True)
    assert pipeline.run(again) == [tmp_path / "empty"]  # a set is replaced as a whole


def test_cancel_during_sampling_leaves_nothing(pipeline, cat_png, tmp_path):
    with pytest.raises(GenerationCancelled):
        pipeline.run(request(cat_png, tmp_path / "out", samples=2),
                     should_cancel=lambda: True)
    assert visible(tmp_path) == []


def test_set_writers_add_files_before_the_set_appears(pipeline, cat_png, tmp_path):
    seen = []

    def write_mesh(folder, views, req):
        assert not (tmp_path / "out").exists()  # still hidden
        seen.append(len(views))
        (folder / MESH_FILE).write_bytes(b"ply\n")

    folders = Pipeline(pipeline.service, set_writers=[write_mesh]).run(request(cat_png, tmp_path / "out", samples=2))
    assert seen == [16, 16] and all((folder / MESH_FILE).is_file() for folder in folders)


@contextlib.contextmanager
def small_disk(tmp_path, size_bytes):
    """A tmpfs of `size_bytes` where this test may mount one (root on Linux), else None."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0
    try:
        yield mount_point if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_after_the_first_set_leaves_no_set(pipeline, cat_png, tmp_path, monkeypatch):
    [one] = pipeline.run(request(cat_png, tmp_path / "measure"))
    set_bytes = sum(path.stat().st_size for path in one.iterdir())
    shutil.rmtree(one)
    with small_disk(tmp_path, int(set_bytes * 1.5)) as disk:
        if disk is None:  # no tmpfs here: the disk fills up while the second set is written
            real = pipeline_module.write_set_files
            calls = []

            def filling(folder, *args):
                calls.append(folder)
                if len(calls) == 2:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(folder, *args)

            monkeypatch.setattr(pipeline_module, "write_set_files", filling)
            disk = tmp_path / "disk"
            disk.mkdir()
        with pytest.raises(SetupError) as failed:
            pipeline.run(request(cat_png, disk / "cat", samples=2))
        assert failed.value.code == "output_not_writable" and "nothing was kept" in failed.value.message
        assert visible(disk) == []  # no complete-looking sample_0, no hidden partial folder
