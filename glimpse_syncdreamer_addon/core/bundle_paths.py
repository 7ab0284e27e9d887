"""Where the bundled server code lives: the installed extension folder (the zip carries
inference_server/, ldm/ and configs/ at its root) or, when running from the repository,
the repository root."""
from __future__ import annotations

from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parents[1]


def server_root() -> Path:
    """The folder that holds `inference_server/`; it goes on the server child's PYTHONPATH."""
    for candidate in (ADDON_DIR, ADDON_DIR.parent):
        if (candidate / "inference_server" / "__init__.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"The bundled inference server was not found next to {ADDON_DIR}. Reinstall the "
        "extension from the Glimpse3D zip (it carries inference_server/, ldm/ and configs/).")
