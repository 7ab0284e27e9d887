"""Batch runs without Ray: what the inputs become, the manifest, failures and --resume.

A stand-in pipeline writes real (solid-colour) view sets, so these tests are fast; the real
model runs in test_batch_ray.py.
"""
import json
import shutil

import pytest
from PIL import Image

from glimpse_syncdreamer_addon.core.view_sets import read_view_set  # the add-on's reader: one reader
from view_set_files import write_view_set
from inference_server.generation.batch import MANIFEST_FILE, collect_items, local_executor, run_batch
from inference_server.errors import InputError
from inference_server.generation.images import load_image

METADATA = {"model": {"name": "SyncDreamer", "config": "tiny.yaml", "checkpoint": None, "checkpoint_sha256": None,
                      "random_weights": False},
            "generation": {"seed": 7, "steps": 1, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                           "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu",
                           "batch_view_num": 16, "sample_index": 0, "sample_count": 1, "input_file": "x.png",
                           "background": "alpha"}, "warning": None}


class StandInPipeline:
    """Reads the image as the pipeline does (so a bad one fails the same way) and writes a set;
    images named in `flaky` fail once with an error that is not about the input."""

    def __init__(self, flaky=()):
        self.flaky = set(flaky)
        self.ran = []

    def run(self, request, progress=None, should_cancel=None):
        self.ran.append(request.image.name)
        image = load_image(request.image)
        if request.image.name in self.flaky:
            self.flaky.discard(request.image.name)
            raise RuntimeError("the worker lost its GPU")
        views = [Image.new("RGB", (256, 256), (index * 15, 0, 0)) for index in range(16)]
        write_view_set(request.output, views, image.convert("RGB").resize((256, 256)), METADATA,
                                     overwrite=request.overwrite)
        return [request.output]


@pytest.fixture
def images(tmp_path, data_dir):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("cat.png", "teapot.png", "crystal.png"):
        shutil.copyfile(data_dir / "testset" / name, folder / name)
    (folder / "notes.txt").write_text("not an image: left out of the folder's images")
    return folder


def manifest(out):
    return {line["source"].rsplit("/", 1)[-1]: line
            for line in map(json.loads, (out / MANIFEST_FILE).read_text().splitlines())}


def test_inputs_from_files_folders_and_csv(images, tmp_path, data_dir):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(data_dir / "testset" / "cat.png", other / "cat.png")
    table = tmp_path / "list.csv"
    table.write_text("file,elevation_deg,crop_size,seed\nimages/teapot.png,5,180,11\nimages/cat.png,oops,200,\n")

    items = collect_items([images, other / "cat.png", table], tmp_path / "out", {"steps": 3})

    assert [item.source.name for item in items] == ["cat.png", "crystal.png", "teapot.png", "cat.png",
                                                    "teapot.png", "cat.png"]
    # one folder per image, named by its stem and unique
    assert [item.output.name for item in items] == ["cat", "crystal", "teapot", "cat_2", "teapot_2", "cat_3"]
    row = items[4]  # the CSV's row: its cells override the command's options, which fill the rest
    assert (row.params.elevation, row.params.crop_size, row.params.seed, row.params.steps) == (5.0, 180, 11, 3)
    assert items[0].params.seed == 42 and items[0].params.steps == 3
    refused = items[5]  # a bad cell refuses that row only, with the parameter's own message
    assert refused.params is None and "elevation" in refused.error


@pytest.mark.parametrize("content, message", [
    ("file,colour\ncat.png,red\n", "unknown column(s) colour"),
    ("image_name,seed\ncat.png,1\n", "no 'file' column"),
])
def test_a_csv_with_wrong_columns_is_refused_up_front(tmp_path, content, message):
    table = tmp_path / "list.csv"
    table.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        collect_items([table], tmp_path / "out", {})


def test_missing_inputs_and_wrong_defaults_are_refused(tmp_path, images):
    with pytest.raises(InputError, match="does not exist"):
        collect_items([tmp_path / "nowhere.png"], tmp_path / "out", {})
    with pytest.raises(InputError, match="--steps"):
        collect_items([images], tmp_path / "out", {"steps": 0})


def test_failures_are_recorded_and_resume_retries_only_what_may_now_work(images, tmp_path):
    (images / "broken.png").write_bytes(b"not a PNG")
    out = tmp_path / "out"
    items = collect_items([images], out, {})
    pipeline = StandInPipeline(flaky={"teapot.png"})

    summary = run_batch(items, out, local_executor(pipeline, resume=False), show_progress=False)

    assert (summary.done, summary.failed, summary.failed_in_manifest) == (2, 2, 2)
    lines = manifest(out)
    assert list(lines) == ["broken.png", "cat.png", "crystal.png", "teapot.png"]  # one line each, input order
    assert lines["broken.png"]["input_error"] and "not an image" in lines["broken.png"]["error"]
    assert not lines["teapot.png"]["input_error"] and "lost its GPU" in lines["teapot.png"]["error"]
    assert read_view_set(lines["cat.png"]["output"]).metadata["generation"]["steps"] == 1

    with pytest.raises(InputError, match="--resume"):  # a second run into the same folder must say so
        run_batch(items, out, local_executor(pipeline, resume=False), show_progress=False)

    pipeline.ran.clear()
    again = run_batch(items, out, local_executor(pipeline, resume=True), resume=True, show_progress=False)
    assert pipeline.ran == ["teapot.png"]  # complete sets and the unchanged bad image are left alone
    assert (again.done, again.failed, again.skipped, again.failed_in_manifest) == (1, 0, 3, 1)

    shutil.copyfile(images / "cat.png", images / "broken.png")  # the person fixes the image
    pipeline.ran.clear()
    fixed = run_batch(items, out, local_executor(pipeline, resume=True), resume=True, show_progress=False)
    assert pipeline.ran == ["broken.png"] and fixed.failed_in_manifest == 0
    assert all(line["state"] == "done" for line in manifest(out).values())
