"""From "extension installed" to "views generated" through the first-run guide's buttons alone,
in background Blender with an empty Blender user folder and an empty data folder: Install Server
for real from the package index reachable here (the CPU torch), Try With Random Weights, Generate
Views with the server that the add-on starts from the new environment. Then a second Install
Server repairs it, and a cancelled one leaves it unmarked. One real install per test session."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

INSTALL, RANDOM, DOWNLOAD = "glimpse3d.install_server", "glimpse3d.try_random_weights", "glimpse3d.download_checkpoint"


@pytest.fixture(scope="session")
def first_run(extension_zip, data_dir, run_bpy_script_once, tmp_path_factory):
    data_folder = tmp_path_factory.mktemp("glimpse_data")
    result = run_bpy_script_once("bl_first_run.py", extension_zip, data_dir / "testset" / "cat.png", timeout=1200,
                                 env_extra={"GLIMPSE_DATA_DIR": str(data_folder), "GLIMPSE_SERVER_PYTHON": "",
                                            "GLIMPSE_SERVER_EXTRA_ARGS": "", "GLIMPSE_CHECKPOINT": ""})
    result["data_folder"] = str(data_folder)
    return result


def test_the_guide_leads_from_install_to_random_weights_then_steps_aside(first_run):
    ids = [[idname for idname, _ in offered] for offered in first_run["guide"]]
    assert ids == [[INSTALL, DOWNLOAD, RANDOM], [DOWNLOAD, RANDOM], []]
    assert [pressed[:2] for pressed in first_run["pressed"]] == [[INSTALL, ["FINISHED"]], [RANDOM, ["FINISHED"]]]


def test_install_server_makes_a_complete_environment_in_the_data_folder_and_sets_server_python(first_run):
    env_python = first_run["data_folder"] + "/server-env/bin/python"
    assert first_run["python_pref"] == env_python
    marker = first_run["marker"]
    assert marker["complete"] and marker["device"] == "cpu" and marker["torch"].startswith("2.13.0")
    assert ["ok", "server Python"] in first_run["setup_report"] and ["ok", "torch"] in first_run["setup_report"]
    assert "Installing torch" in first_run["_stdout"]  # progress printed in background mode
    # download.pytorch.org cannot be reached here: the CPU build came from the configured index
    log = (Path(first_run["data_folder"]) / "logs" / "install-server.log").read_text()
    assert "cannot be reached" in log and "taking torch from the configured package index" in log
    assert first_run["cpu_labels"] and first_run["cpu_labels"][0].startswith("On the CPU: about")


def test_views_are_generated_by_the_server_the_addon_started_from_that_environment(first_run):
    assert first_run["generate"] == ["FINISHED"]
    assert first_run["server_python"] == first_run["python_pref"]
    assert {f"view_{i:02d}.png" for i in range(16)} | {"cameras.json", "input.png"} <= set(first_run["files"])
    assert first_run["random_weights"] is True and first_run["planes"] == 16


def test_a_second_install_repairs_without_downloading(first_run):
    repair = first_run["repair"]
    assert repair["outcome"] == ["FINISHED"] and repair["marker"] and repair["same_python"]
    assert "keeping the existing environment" in repair["log"] and "Downloading" not in repair["log"]
    assert "Requirement already satisfied: torch==2.13.0" in repair["log"]
    print(f"install {first_run['pressed'][0][2]} s, repair {repair['seconds']} s")  # shown with -rA


def test_download_checkpoint_runs_in_the_new_environment_and_sets_checkpoint(first_run):
    assert first_run["download"] == ["FINISHED"] and first_run["checkpoint_same"]
    assert first_run["checkpoint_pref"] == first_run["data_folder"] + "/checkpoints/syncdreamer-pretrain.ckpt"
    assert "Glimpse3D: Checking the sha256" in first_run["_stdout"]


def test_a_cancelled_install_leaves_no_environment_marked_usable(first_run):
    assert first_run["cancel"] == "Cancelled" and first_run["marker_after_cancel"] is None
    assert [idname for idname, _ in first_run["guide_after_cancel"]] == [INSTALL]
    assert first_run["guide_after_cancel"][0][1] == "Finish Installing Server"


def test_the_sidebar_shows_a_running_task_with_cancel_and_a_failure_with_the_cpu_offer(first_run):
    running = [tuple(item) for item in first_run["drawn_running"]]
    assert ("progress", "Installing torch torch: 42%", 0.42) in running
    assert ("label", "1.25 of 2.50 GB", "NONE") in running
    assert ("operator", "glimpse3d.cancel_setup", "Cancel") in running
    assert not [item for item in running if item[:2] == ("operator", INSTALL)]  # no steps meanwhile
    assert first_run["cancel_op"] == ["FINISHED"]
    assert ["label", "Installing torch: cancelled", "INFO"] in first_run["drawn_cancelled"]
    failed = first_run["drawn_failed"]
    assert ["label", "The package index for the CUDA build cannot be reached.", "ERROR"] in failed
    assert ["operator", INSTALL, "Install the CPU Build"] in failed
