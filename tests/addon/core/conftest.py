"""Fixtures of the bpy-free add-on tests."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest


@pytest.fixture
def run_in_extension_layout(tmp_path, repo_root):
    """run(door_module, probe, with_numpy=True, timeout=60) -> CompletedProcess.

    Lays out the built extension's shape (<ext>/__init__.py, <ext>/core/<door_module> with the
    door to the server code, core/bundled.py, and what it needs, <ext>/inference_server/) as the package `bl_ext_test` and runs `probe` in it with `-S`: no
    site module, so the project's editable install (a .pth hook) is not active, and only
    numpy's folder (with_numpy) or nothing but the standard library is on the path, as in
    Blender's Python with the extension installed."""

    def run(door_module: str, probe: str, with_numpy: bool = True, timeout: int = 60):
        extension = tmp_path / "bl_ext_test"
        (extension / "core").mkdir(parents=True)
        (extension / "__init__.py").write_text("")
        (extension / "core" / "__init__.py").write_text("")
        for module in {door_module, "bundled.py", "bundle_paths.py"}:
            shutil.copy(repo_root / "glimpse_syncdreamer_addon" / "core" / module, extension / "core")
        shutil.copytree(repo_root / "inference_server", extension / "inference_server",
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = {"PATH": "/usr/bin:/bin"}
        if with_numpy:
            env["PYTHONPATH"] = str(Path(numpy.__file__).resolve().parents[1])
        return subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout, env=env)

    return run
