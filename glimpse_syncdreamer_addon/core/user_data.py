"""The add-on's user data folder, outside the extension so that it survives updates and
uninstalls: the server environment, the downloaded checkpoint and the setup logs. No bpy.

$GLIMPSE_DATA_DIR overrides the place (tests, or a bigger disk)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_DATA_DIR = "GLIMPSE_DATA_DIR"


def data_dir(environ=os.environ, platform: str = sys.platform, home: Path | None = None) -> Path:
    """Linux: $XDG_DATA_HOME/glimpse3d (~/.local/share/glimpse3d); macOS: ~/Library/Application
    Support/Glimpse3D; Windows: %LOCALAPPDATA%\\Glimpse3D."""
    if environ.get(ENV_DATA_DIR):
        return Path(environ[ENV_DATA_DIR]).expanduser()
    home = home or Path.home()
    if platform == "win32":
        return Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "Glimpse3D"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Glimpse3D"
    return Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "glimpse3d"


def server_env_dir(environ=os.environ) -> Path:
    return data_dir(environ) / "server-env"


def checkpoints_dir(environ=os.environ) -> Path:
    return data_dir(environ) / "checkpoints"


def logs_dir(environ=os.environ) -> Path:
    return data_dir(environ) / "logs"


def env_python(env_dir: Path) -> Path:
    """The interpreter of a virtual environment."""
    return env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
