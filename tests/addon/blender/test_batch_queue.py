"""The sidebar's batch queue in a fresh bpy process against the REAL server (random weights):
three images with one broken are generated and imported in turn, the failure marked and the
rest done; then, driven by the interface's timer, Cancel All stops the running job and the
waiting ones and leaves the server ready."""
import shutil
import sys

import pytest


@pytest.mark.slow
def test_queue_goes_on_after_a_failure_and_cancel_all_stops_it(extension_zip, data_dir, run_bpy_script, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cat.png", "teapot.png"):
        shutil.copy(data_dir / "testset" / name, photos / name)
    (photos / "broken.png").write_bytes(b"not an image")
    result = run_bpy_script(
        "bl_queue_real_server.py", extension_zip, photos,
        env_extra={"GLIMPSE_SERVER_PYTHON": sys.executable, "GLIMPSE_SERVER_EXTRA_ARGS": "--random-weights"})

    assert result["add"] == ["FINISHED"] and result["start"] == ["FINISHED"]
    assert result["items"] == [["cat.png", "done", ["cat"]], ["broken.png", "failed", []],
                               ["teapot.png", "done", ["teapot"]]]
    assert result["broken_message"]
    assert {"cat", "teapot"} <= set(result["collections"]) and not result["running_after"]

    assert result["queued"] == ["broken.png", "cat.png", "teapot.png"]  # a folder: its images by name
    assert result["while_running"][0] == "failed" and "running" in result["while_running"]
    assert result["cancel_all"] == ["FINISHED"]
    assert result["after_cancel"][0] == "failed" and result["after_cancel"].count("cancelled") == 2
    assert result["session_after"] == [False, "ready", False]
