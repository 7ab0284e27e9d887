"""The extension on the Blender LTS releases that the manifest's blender_version_min promises
(constraints-lts.txt: 4.2 and 4.5), beside the main suite on 5.0: each runs in its own environment
(.venv-bpy42, .venv-bpy45, made by scripts/setup_lts_envs.sh, which `make test` and `make test-lts`
run first) as a child process, and walks a studio script's path with the zip installed: generate
one set against the REAL server (this environment's Python and torch, random weights, 1 step),
import a views folder with its proxy mesh, the batch queue, save, reopen, disable."""
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from inference_server import protocol
from proxy_mesh_scene import target_views


def lts_versions(repo_root) -> list[str]:
    """The bpy versions pinned in constraints-lts.txt, e.g. ['4.2.23', '4.5.15']."""
    return re.findall(r"^bpy==(\S+)$", (repo_root / "constraints-lts.txt").read_text(), flags=re.MULTILINE)


@pytest.fixture(scope="session")
def lts_pythons(repo_root) -> dict:
    """{version: that environment's python}, made (or found up to date) by the setup script."""
    subprocess.run(["bash", str(repo_root / "scripts" / "setup_lts_envs.sh")], check=True, timeout=3600)
    return {version: repo_root / f".venv-bpy{''.join(version.split('.')[:2])}" / "bin" / "python"
            for version in lts_versions(repo_root)}


@pytest.fixture(scope="module")
def views_folder(tmp_path_factory):
    """Sixteen views of a known scene (sphere on a box): the proxy mesh has a real shape to find."""
    folder = tmp_path_factory.mktemp("lts") / "scene_views"
    folder.mkdir()
    for name, image in zip(protocol.VIEW_FILES, target_views()[0]):
        Image.fromarray(image[..., :3]).save(folder / name)
    return folder


def test_the_pinned_versions_are_the_lts_lines(repo_root):
    assert [v.rsplit(".", 1)[0] for v in lts_versions(repo_root)] == ["4.2", "4.5"]


@pytest.mark.slow
@pytest.mark.lts
@pytest.mark.parametrize("line", ["4.2", "4.5"])
def test_scripted_path_on_lts(line, lts_pythons, extension_zip, data_dir, views_folder, run_bpy_script, tmp_path):
    (version,) = [v for v in lts_pythons if v.startswith(line + ".")]
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(data_dir / "testset" / "teapot.png", photos / "teapot.png")
    work = tmp_path / "work"
    work.mkdir()
    result = run_bpy_script(
        "bl_lts_scripted_path.py", extension_zip, data_dir / "testset" / "cat.png", views_folder, photos, work,
        python=lts_pythons[version],
        env_extra={"GLIMPSE_SERVER_PYTHON": sys.executable, "GLIMPSE_SERVER_EXTRA_ARGS": "--random-weights"})
    assert result["blender"].startswith(version)  # the environment's Blender, not this one's 5.0
    assert result["install"] == ["FINISHED"]

    generated = result["generated"]
    (folder,) = generated["folders"]
    assert folder.startswith(str(work / "glimpse3d_views"))  # beside the saved .blend
    assert generated["collections"] == ["generated"] and generated["seed"] == 3
    assert generated["views_in_cameras_json"] == 16
    assert {f"view_{i:02d}.png" for i in range(16)} | {"cameras.json", "input.png"} <= set(generated["files"])
    assert "Glimpse3D: Done" in result["_stdout"]  # print_progress saw the job end

    assert result["import"] == ["FINISHED"]
    assert result["queue_add"] == ["FINISHED"] and result["queue_start"] == ["FINISHED"]
    assert result["queue_items"] == [["teapot.png", "done", ["teapot"]]]

    full_set = {"cameras": 16, "planes": 16, "images": 16, "images_on_disk": True}
    before = result["before_save"]
    assert before["generated"] == before["teapot"] == {**full_set, "proxy_meshes": []}
    (vertices,) = before["scene_views"].pop("proxy_meshes")
    assert vertices > 1000 and before["scene_views"] == full_set

    assert result["save"] == ["FINISHED"] and result["reopen"] == ["FINISHED"]
    reopened = result["reopened"]
    assert reopened["generated"] == reopened["teapot"] == {**full_set, "proxy_meshes": []}
    assert reopened["scene_views"] == {**full_set, "proxy_meshes": [vertices]}
    assert "glimpse3d_views" in result["relative_images"]  # generated views stay relative to the .blend

    assert result["server_running_before_disable"] and not result["server_alive_after_disable"]
    assert result["types_after_disable"] == [] and not result["api_after_disable"]
