"""Where the bundled server code lives: the installed extension folder (the zip carries
inference_server/, ldm/ and configs/ at its root, which is the add-on package) or, when running
from the repository, the repository root. Decided once, from the files; `bundled.py` imports
the server modules from here, and the server child gets this folder on its PYTHONPATH."""
from __future__ import annotations

from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parents[1]
# The built extension: inference_server/ inside the add-on package. The repository: beside it.
INSIDE_EXTENSION = (ADDON_DIR / "inference_server" / "__init__.py").is_file()


def server_root() -> Path:
    """The folder that holds `inference_server/`; it goes on the server child's PYTHONPATH."""
    root = ADDON_DIR if INSIDE_EXTENSION else ADDON_DIR.parent
    if (root / "inference_server" / "__init__.py").is_file():
        return root
    raise FileNotFoundError(
        f"The bundled inference server was not found next to {ADDON_DIR}. Reinstall the "
        "extension from the Glimpse3D zip (it carries inference_server/, ldm/ and configs/).")
