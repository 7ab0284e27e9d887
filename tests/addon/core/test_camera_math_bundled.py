"""camera_math finds the camera module both ways: from the repository (top-level
`inference_server`) and inside the built extension (a sibling package, reached relatively)."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy

from glimpse_syncdreamer_addon.core import camera_math


def test_from_the_repository():
    assert camera_math.cameras.__name__ == "inference_server.cameras"


def test_inside_the_extension_layout(tmp_path, repo_root):
    # the zip's layout: <ext>/__init__.py, <ext>/core/camera_math.py, <ext>/inference_server/
    extension = tmp_path / "bl_ext_test"
    (extension / "core").mkdir(parents=True)
    (extension / "__init__.py").write_text("")
    (extension / "core" / "__init__.py").write_text("")
    shutil.copy(repo_root / "glimpse_syncdreamer_addon" / "core" / "camera_math.py", extension / "core")
    shutil.copytree(
        repo_root / "inference_server", extension / "inference_server", ignore=shutil.ignore_patterns("__pycache__")
    )
    probe = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('inference_server') is None, 'repository leaked onto sys.path'\n"
        "from bl_ext_test.core import camera_math\n"
        "print(camera_math.cameras.__name__, camera_math.LENS_MM)\n"
    )
    # -S: no site module, so the project's editable install (a .pth hook) is not active and
    # only numpy's folder is on the path, as in Blender's Python with the extension installed.
    numpy_home = str(Path(numpy.__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": numpy_home},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bl_ext_test.inference_server.cameras", "35.0"]
