"""A Python to create the server environment from, found without asking the user: the one
given by $GLIMPSE_BASE_PYTHON, the interpreter we run in when it is a plain Python (the bpy
module), Blender's bundled Python, or `uv` (which fetches a standalone Python). No bpy."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENV_BASE_PYTHON = "GLIMPSE_BASE_PYTHON"
MIN_VERSION = (3, 10)
UV_PYTHON = "3.11"  # what uv fetches: the version Blender 4.2-5.0 bundles, with torch wheels

# Can it make a virtual environment with pip in it? Prints the version.
_PROBE = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"

NO_PYTHON = (
    "No Python to create the server environment from was found: Blender's bundled Python was not "
    "found or cannot create virtual environments, and `uv` is not installed. Either install uv "
    "(https://docs.astral.sh/uv/) and press Install Server again, or set the environment variable "
    f"{ENV_BASE_PYTHON} to a Python 3.10+ interpreter before starting Blender, or make the "
    "environment by hand (docs/installation.md, 'The manual way') and set Server Python to it.")


@dataclass(frozen=True)
class BasePython:
    kind: str  # "python" (makes the venv itself) or "uv"
    path: str
    version: str  # "3.11" (for uv: the version it will fetch)

    def create_env_argv(self, env_dir: Path) -> list:
        if self.kind == "uv":
            return [self.path, "venv", "--seed", "--python", self.version, str(env_dir)]
        return [self.path, "-m", "venv", str(env_dir)]


def candidates(executable: str = sys.executable, prefix: str = sys.prefix, binary_path: str = "",
               environ=os.environ) -> list:
    """Interpreters worth trying, in order (duplicates and missing files left out)."""
    found = [environ.get(ENV_BASE_PYTHON, "")]
    if Path(executable).name.lower().startswith("python"):
        found.append(executable)  # the bpy module, or a script run by a plain Python
    # Inside Blender sys.executable is Blender itself; its Python lives in <version>/python.
    roots = [Path(prefix)]
    if binary_path:
        roots += [Path(p) for p in glob.glob(str(Path(binary_path).parent / "*" / "python"))]
        roots += [Path(p) for p in glob.glob(str(Path(binary_path).parent.parent / "Resources" / "*" / "python"))]
    for root in roots:
        found += sorted(glob.glob(str(root / "bin" / "python3.*")), reverse=True)
        found += [str(root / "bin" / "python3"), str(root / "bin" / "python.exe"), str(root / "python.exe")]
    unique = []
    for path in found:
        if path and Path(path).is_file() and path not in unique and not path.endswith("-config"):
            unique.append(path)
    return unique


def usable_version(python: str) -> str:
    """The "major.minor" of `python` when it can make a virtual environment with pip, else ""."""
    try:
        result = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60,
                                env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    version = result.stdout.strip()
    if result.returncode != 0 or not version:
        return ""
    return version if tuple(map(int, version.split("."))) >= MIN_VERSION else ""


def find_base_python(*, binary_path: str = "", environ=os.environ, which=shutil.which) -> BasePython:
    """The first usable interpreter, else `uv`; raises LookupError(NO_PYTHON) when neither."""
    for python in candidates(binary_path=binary_path, environ=environ):
        version = usable_version(python)
        if version:
            return BasePython("python", python, version)
    uv = which("uv")
    if uv:
        return BasePython("uv", uv, UV_PYTHON)
    raise LookupError(NO_PYTHON)
