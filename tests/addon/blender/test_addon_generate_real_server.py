"""generate_views in background Blender against the REAL server process that the add-on starts
(the project's Python, --random-weights: the tiny model, no checkpoint), one step; the set is
imported and disabling the add-on stops the server."""
import sys

import pytest


@pytest.mark.slow
def test_generate_views_synchronously_with_the_real_server(extension_zip, data_dir, run_bpy_script):
    result = run_bpy_script(
        "bl_generate_real_server.py", extension_zip, data_dir / "testset" / "cat.png",
        env_extra={"GLIMPSE_SERVER_PYTHON": sys.executable, "GLIMPSE_SERVER_EXTRA_ARGS": "--random-weights"})
    assert result["generate"] == ["FINISHED"] and result["server_state"] == "ready"

    stdout = result["_stdout"]
    assert "Glimpse3D: generating views of cat.png (seed 7, 2 steps)" in stdout
    # With 2 steps, "1/2" lasts a whole step, so the 0.5 s poll sees it whatever the machine load.
    assert "Glimpse3D: Step 1/2" in stdout and "Glimpse3D: imported " in stdout  # progress printed

    (folder,) = result["folders"]
    assert "/extensions/" not in folder and "/user_data/Glimpse3D/views/" in folder  # unsaved: user data
    expected = {f"view_{i:02d}.png" for i in range(16)} | {"input.png", "grid.png", "cameras.json", "transforms.json"}
    assert expected <= set(result["files"])
    assert result["cameras_json"] == {"random_weights": True, "steps": 2, "seed": 7, "views": 16}

    # Preview Model Input: the server's preprocessing of the panel's image, equal to the job's input.png,
    # and marked old once a setting it depends on changes.
    assert result["preview_op"] == ["FINISHED"]
    assert result["preview"] == {"fresh": True, "size": [256, 256], "same_as_input_png": True,
                                 "fresh_after_crop_change": False}

    imported = result["set"]
    assert imported["in_scene"] and imported["cameras"] == 16 and imported["planes"] == 16
    assert imported["empties"] == 1 and imported["markers_with_cameras"] == 0  # the shot camera stays in charge
    assert imported["name"] == "cat"  # named after the input image

    done, failed = result["ticks"]  # the timer's work, as plain calls
    assert not done["busy"] and done["notice"] == f"Imported {imported['name']}" and done["interval"] == 1.0
    assert result["sets_after_ticks"] == [imported["name"]]  # importing the same folder replaces the set
    assert not failed["busy"] and failed["error"] == "Out of GPU memory: lower Views per Batch."

    assert result["server_alive_before_disable"] and not result["server_alive_after_disable"]
    assert result["types_after_disable"] == []
