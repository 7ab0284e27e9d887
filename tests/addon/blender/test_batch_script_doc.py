"""The batch script of docs/blender-scripting.md, taken from the page as it stands, run with the
`bpy` module (factory settings: the installed extension is not enabled until the script enables
it) against the REAL server (random weights, one step) on three test images, one of them broken:
the failure is reported, the others are generated with their own CSV parameters and saved."""
import json
import os
import re
import shutil
import subprocess
import sys

import bpy
import pytest

SCRIPT_START = '"""Generate the sixteen views of every image in a folder into one .blend.'


def batch_script_from_the_doc(repo_root) -> str:
    page = (repo_root / "docs" / "blender-scripting.md").read_text(encoding="utf-8")
    (script,) = [block for block in re.findall(r"```python\n(.*?)```", page, re.S) if block.startswith(SCRIPT_START)]
    return script


@pytest.mark.slow
def test_the_documented_batch_script_runs_as_written(repo_root, data_dir, extension_zip, run_bpy_script, tmp_path):
    assert run_bpy_script("bl_install_only.py", extension_zip)["install"] == ["FINISHED"]
    script = tmp_path / "batch_views.py"
    script.write_text(batch_script_from_the_doc(repo_root), encoding="utf-8")
    photos = tmp_path / "photos"
    photos.mkdir()
    # A non-ASCII file name: its set keeps the name, and its CSV row still applies.
    shutil.copy(data_dir / "testset" / "cat.png", photos / "cat.png")
    shutil.copy(data_dir / "testset" / "teapot.png", photos / "théière.png")
    csv_text = (data_dir / "testset" / "params.csv").read_text(encoding="utf-8")
    (photos / "params.csv").write_text(csv_text.replace("teapot.png", "théière.png"), encoding="utf-8")
    (photos / "broken.png").write_bytes(b"not an image at all")

    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"),
               XDG_DATA_HOME=str(tmp_path / "user_data"), GLIMPSE_SERVER_PYTHON=sys.executable,
               GLIMPSE_SERVER_EXTRA_ARGS="--random-weights")
    out_blend = tmp_path / "out" / "all_views.blend"
    run = subprocess.run([sys.executable, str(script), "--", str(photos), str(out_blend), "--params",
                          str(photos / "params.csv"), "--steps", "1"],
                         capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    output = run.stdout
    assert run.returncode == 1, output + run.stderr  # one image failed
    assert "saved 2 of 3 images to" in output
    assert re.search(r"failed: broken\.png: InputError: .+", output), output
    assert "done cat.png: cat" in output and "done théière.png: théière" in output

    bpy.ops.wm.open_mainfile(filepath=str(out_blend))
    try:
        sets = {c.name: c for c in bpy.data.collections}
        assert {"cat", "théière"} <= set(sets) and not any("broken" in name for name in sets)
        for name, (elevation, crop) in {"cat": (30.0, 200), "théière": (0.0, 180)}.items():
            assert sum(obj.type == "CAMERA" for obj in sets[name].objects) == 16
            (folder,) = {os.path.dirname(bpy.path.abspath(image.filepath)) for image in bpy.data.images
                         if image.name.startswith(f"{name}_view_")}
            generation = json.loads(open(os.path.join(folder, "cameras.json"), encoding="utf-8").read())["generation"]
            assert (generation["elevation_deg"], generation["crop_size"]) == (elevation, crop)  # from the CSV
        assert all(image.filepath.startswith("//glimpse3d_views/") for image in bpy.data.images if "_view_" in image.name)
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
