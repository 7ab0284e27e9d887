"""The Python API (`import glimpse3d_api`) in a fresh bpy process against the REAL server the
add-on starts (random weights, one step): what it returns, its error types, Ctrl+C and Cancel in
background mode, and that uninstalling the extension and moving the saved .blend with its
output folder loses no view."""
import sys

import pytest


@pytest.mark.slow
def test_api_generates_imports_and_keeps_the_outputs_safe(extension_zip, data_dir, run_bpy_script, tmp_path):
    result = run_bpy_script(
        "bl_api_real_server.py", extension_zip, data_dir / "testset" / "cat.png", tmp_path / "work",
        env_extra={"GLIMPSE_SERVER_PYTHON": sys.executable, "GLIMPSE_SERVER_EXTRA_ARGS": "--random-weights"})
    assert result["api_module"] == "bl_ext.user_default.glimpse_syncdreamer.api"

    generated = result["generated"]
    assert generated["folder_parent"] == str(tmp_path / "work" / "shot" / "glimpse3d_views")  # beside the .blend
    assert not generated["inside_extension"]
    assert generated["collection"] == "猫 cat" and generated["seed"] == 3
    assert generated["cameras_views"] == 16 and generated["cameras_seed"] == 3
    assert generated["image_path"].startswith("//glimpse3d_views/")  # relative to the .blend
    assert result["reimported"] == [True, "猫 cat", True]

    errors = result["errors"]
    assert errors["missing_file"][:2] == ["InputError", True] and "does not exist" in errors["missing_file"][2]
    assert errors["broken_image"][:2] == ["InputError", True]
    assert errors["bad_option"][:2] == ["InputError", True] and "TOON" in errors["bad_option"][2]
    assert errors["not_a_set"][:2] == ["InputError", True] and "not a view set" in errors["not_a_set"][2]

    # Ctrl+C: the server's job is cancelled and the session is ready; Cancel works in background mode.
    assert result["interrupt"] == {"busy": False, "server": "ready", "last_end": "job_cancelled",
                                   "server_job_state": "cancelled"}
    assert result["cancel_op"] == ["FINISHED"]
    assert result["cancelled"] == ["CancelledError", False, "ready"]
    assert result["usable_after"] == [1, [], 6]

    assert result["uninstall"] == ["FINISHED"] and result["extension_dir_gone"] and result["views_kept"]
    assert result["reopened"] == {"images": 16, "all_found": True, "all_load": True, "relative": True}
