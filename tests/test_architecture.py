"""The architecture contracts of pyproject.toml ([tool.importlinter]) hold: `lint-imports` passes."""
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    # PYTHONPATH: the packages of this checkout, not whatever an editable install points at
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_server_package_shows_its_layers_at_the_top():
    modules = sorted(path.name for path in (REPO_ROOT / "inference_server").glob("*.py"))
    assert len(modules) <= 10, modules
