"""The settings lookups every part of the add-on needs: the add-on's preferences, the folders in
its user directory, the output folder, and the `ServerSettings` built from the preferences.
(The preferences' UI is prefs.py.) Imports bpy and core only."""
import os
import tempfile

import bpy

from ..core import server_settings as ss
from ..core.output_location import default_output_folder

# The extension's package (this module is "<package>.blender.settings").
ADDON_PACKAGE = __package__.rpartition(".")[0]


def addon_prefs(context=None):
    """Our preferences, or None when the package was registered without the add-on system."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_folder(name: str) -> str:
    """A folder in the extension's user directory (a temp folder when not run as an extension)."""
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=name, create=True)
    except ValueError:  # registered from the repository, not installed as an extension
        path = os.path.join(tempfile.gettempdir(), "glimpse_syncdreamer", name)
        os.makedirs(path, exist_ok=True)
        return path


def output_folder(prefs) -> str:
    chosen = bpy.path.abspath(prefs.output_dir) if prefs is not None and prefs.output_dir else ""
    return os.path.abspath(chosen) if chosen else default_output_folder(bpy.data.filepath)


def server_settings(context=None) -> ss.ServerSettings:
    """The settings for starting or reaching the server; raises ValueError for bad extra args."""
    prefs = addon_prefs(context)
    if prefs is None:  # defaults plus the environment (scripts that register the package directly)
        return ss.ServerSettings(python=ss.resolve_python(""), extra_args=ss.resolve_extra_args(""),
                                 idle_unload_s=600.0, output_dir=output_folder(None))
    return ss.ServerSettings(
        mode=prefs.server_mode,
        python=ss.resolve_python(bpy.path.abspath(prefs.python_path)),
        checkpoint=bpy.path.abspath(prefs.checkpoint_path),
        device=prefs.device,
        precision=prefs.precision,
        low_memory=prefs.low_memory,
        extra_args=ss.resolve_extra_args(prefs.extra_args),
        url=prefs.server_url.strip(),
        token=prefs.server_token.strip(),
        idle_unload_s=prefs.idle_unload_minutes * 60.0,
        ready_timeout_s=float(prefs.start_timeout_s),
        output_dir=output_folder(prefs),
    )
