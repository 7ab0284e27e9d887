"""Shared test setup: where the test data lives, and the markers that select subsets.

Everything the tests read is in tests/data (the golden miniature, the test images with their
licence, the reference cameras and key list), so a fresh clone tests itself with nothing beside
it. The packages are importable because `make env` installs the project (`pip install -e .`).

Markers (pytest.ini): `blender` for tests that run the bpy module, `golden` for the model's golden
comparison, `cluster` for Ray clusters, `lts` for the LTS Blender releases (their own
environments, `make test-lts`), `slow` for anything that takes more than a few seconds.
`make test-fast` skips all five; `make test` runs everything.
"""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "data"

# Folders whose every test drives Blender (the bpy module, in this or a child process).
BLENDER_DIRS = (Path(__file__).resolve().parent / "addon" / "blender",)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if any(folder in path.parents for folder in BLENDER_DIRS):
            item.add_marker(pytest.mark.blender)
