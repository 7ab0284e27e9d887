"""Where generated view sets go when the artist has not chosen an Output Folder: with their
work, never inside the extension's own folder (Blender deletes that folder, outputs and all,
when the extension is uninstalled).

- The .blend is saved: a `glimpse3d_views` folder beside it, so the file and its views move
  together (and relative image paths keep working after the move).
- The .blend is not saved yet: `Glimpse3D/views` in the user's data folder, which belongs to no
  extension and no Blender version.

No bpy: the rule is tested in plain Python.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

FOLDER_BESIDE_BLEND = "glimpse3d_views"
USER_DATA_SUBFOLDER = ("Glimpse3D", "views")


def user_data_dir(environ=None, platform: str | None = None, home: Path | None = None) -> Path:
    """The platform's per-user data folder (XDG on Linux, Application Support on macOS,
    LOCALAPPDATA on Windows)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    home = Path.home() if home is None else Path(home)
    if platform.startswith("win"):
        base = environ.get("LOCALAPPDATA") or environ.get("APPDATA")
        return Path(base) if base else home / "AppData" / "Local"
    if platform == "darwin":
        return home / "Library" / "Application Support"
    base = environ.get("XDG_DATA_HOME", "")
    return Path(base) if os.path.isabs(base) else home / ".local" / "share"


def default_output_folder(blend_path: str, *, environ=None, platform: str | None = None,
                          home: Path | None = None) -> str:
    """The default folder for new sets, given the saved .blend's path ("" when unsaved)."""
    if blend_path:
        return str(Path(blend_path).resolve().parent / FOLDER_BESIDE_BLEND)
    return str(user_data_dir(environ, platform, home).joinpath(*USER_DATA_SUBFOLDER))
