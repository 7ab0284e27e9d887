"""`batch --ray`: six images (one unreadable) over two model workers, then --resume."""
import csv
import json
import subprocess
import sys

import pytest
from ray_harness import REPO_ROOT

from glimpse_syncdreamer_addon.core.view_sets import read_view_set  # the add-on's reader: one reader

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
FAST = ["--steps", "1", "--cfg-scale", "1", "--batch-views", "16", "--random-weights", "--quiet"]


def run_batch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inference_server", "batch", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_six_images_one_bad_then_resume_does_nothing(cluster, data_dir, tmp_path):
    testset = data_dir / "testset"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a PNG")
    table = tmp_path / "images.csv"
    with open(table, "w", newline="") as handle:  # the test set's own parameters, plus a seed and the bad file
        writer = csv.writer(handle)
        writer.writerow(["file", "elevation_deg", "crop_size", "seed"])
        with open(testset / "params.csv", newline="") as source:
            for index, row in enumerate(csv.DictReader(source)):
                writer.writerow([testset / row["file"], row["elevation_deg"], row["crop_size"], 100 + index])
        writer.writerow([bad.name, 10, 200, 7])
    out = tmp_path / "out"

    first = run_batch(str(table), "-o", str(out), "--ray", cluster.address, *FAST)
    assert first.returncode == 1, first.stderr  # one image failed
    assert "5 done, 1 failed" in first.stderr
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    by_name = {line["source"].rsplit("/", 1)[-1]: line for line in lines}
    assert by_name["broken.png"]["state"] == "failed" and "not an image" in by_name["broken.png"]["error"]
    assert by_name["broken.png"]["input_error"] is True
    for name in ("aircraft.png", "backpack.png", "cat.png", "crystal.png", "teapot.png"):
        line = by_name[name]
        assert line["state"] == "done", line
        generation = read_view_set(line["output"]).metadata["generation"]
        assert generation["crop_size"] == line["params"]["crop_size"]
        assert generation["seed"] == line["params"]["seed"]
    assert by_name["crystal.png"]["params"]["crop_size"] == 180
    assert by_name["backpack.png"]["params"]["elevation"] == 0

    again = run_batch(str(table), "-o", str(out), "--ray", cluster.address, "--resume", *FAST)
    assert "0 done, 0 failed, 6 skipped" in again.stderr, again.stderr
    assert again.returncode == 1  # the bad image is still failed
    assert [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()] == lines


def test_a_model_that_cannot_load_stops_the_run_with_its_reason(cluster, data_dir, tmp_path):
    out = tmp_path / "out"
    result = run_batch(str(data_dir / "testset" / "cat.png"), "-o", str(out), "--ray", cluster.address,
                       "--checkpoint", str(tmp_path / "missing.safetensors"), "--quiet")
    assert result.returncode == 3, result.stderr
    assert "the model workers could not start: The checkpoint given by --checkpoint" in result.stderr
    assert not (out / "manifest.jsonl").exists()  # nothing ran: a new run needs no --resume
