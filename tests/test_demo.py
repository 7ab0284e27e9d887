"""`make demo` end to end (random weights: no checkpoint here): it leaves the output folder, the
.blend and the rendered picture where it says, and the .blend holds the imported set."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

# the demo runs background Blender (the bpy module) and a real server: minutes here
pytestmark = [pytest.mark.slow, pytest.mark.blender]


def test_demo_leaves_every_file_it_promises(repo_root, tmp_path):
    out = tmp_path / "demo"
    command = [sys.executable, str(repo_root / "scripts" / "demo.py"), "--out", str(out), "--random-weights",
                "--steps", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "RANDOM WEIGHTS" in result.stdout and "NOISE" in result.stdout

    (folder,) = [p for p in (out / "views").iterdir() if p.is_dir()]
    expected = {f"view_{i:02d}.png" for i in range(16)} | {"input.png", "grid.png", "cameras.json", "transforms.json"}
    assert expected <= {p.name for p in folder.iterdir()}
    cameras = json.loads((folder / "cameras.json").read_text())
    assert cameras["model"]["random_weights"] and cameras["generation"]["steps"] == 2
    for path in (folder, out / "demo.blend", out / "render.png"):
        assert str(path) in result.stdout  # printed where it is

    picture = Image.open(out / "render.png")
    assert picture.size == (960, 640)
    # The ring of view planes is in the picture: many pixels differ from the flat background.
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    background = pixels[0]  # the corner shows only the world colour
    assert np.any(pixels != background, axis=1).mean() > 0.1

    check = subprocess.run(
        [sys.executable, "-c",
         "import bpy, json, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]);"
         "objs = bpy.data.objects; print('RESULT', json.dumps({"
         "'cameras': sum(o.type == 'CAMERA' and o.name != 'Demo Overview' for o in objs),"
         "'planes': sum(o.type == 'MESH' for o in objs),"
         "'packed': sum(1 for i in bpy.data.images if i.packed_file)}))",
         str(out / "demo.blend")], capture_output=True, text=True, timeout=300)
    line = next(l for l in check.stdout.splitlines() if l.startswith("RESULT "))
    found = json.loads(line[len("RESULT "):])
    assert found["cameras"] == 16 and found["planes"] == 16 and found["packed"] >= 16
