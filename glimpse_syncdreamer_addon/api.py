"""The Python API for pipelines, importable as `glimpse3d_api` while the extension is enabled.

Blender names an installed extension after the repository it came from
(`bl_ext.user_default.glimpse_syncdreamer`, `bl_ext.blender_org.glimpse_syncdreamer`, ...), so
no import path of the package itself is stable. `register()` therefore also puts this module
into `sys.modules` under the one name `glimpse3d_api` (and `unregister()` takes it out): a script
writes `import glimpse3d_api` whatever the repository, and the import fails with
ModuleNotFoundError exactly when the extension is not enabled (docs/blender-scripting.md).

Every function blocks until its work is done (Blender's timers do not run while a script runs)
and returns what it made; every failure is a `Glimpse3DError`: `SetupError`, `InputError`,
`ServerError` or `CancelledError`. Ctrl+C (KeyboardInterrupt) during `generate_views` cancels
the server's job before it propagates, so the next call finds the server ready.
"""
from __future__ import annotations

import bpy

from .blender import runtime, settings
from .blender.generate import Result, cancel, generate_views, import_views
from .core.api_errors import CancelledError, Glimpse3DError, InputError, ServerError, SetupError
from .core.import_options import INTERPOLATIONS, SHADERS
from .core.panel_state import progress_text
from .core.server_process import ServerStartError

STABLE_NAME = "glimpse3d_api"

__all__ = [
    "Result", "generate_views", "import_views", "cancel", "start_server", "stop_server", "print_progress",
    "Glimpse3DError", "SetupError", "InputError", "ServerError", "CancelledError", "SHADERS", "INTERPOLATIONS",
]


def start_server(context=None) -> str:
    """Start the local server (or connect to the remote one) and wait until it is ready;
    returns its URL. Raises SetupError with the reason when it cannot start."""
    session = runtime.session
    try:
        session.start_server(settings.server_settings(context or bpy.context))
        session.wait_until_ready()
    except (ServerStartError, ValueError) as exc:
        raise SetupError(str(exc)) from None
    return session.client.base_url


def stop_server() -> None:
    """Stop the local server (a remote one is only let go); cancels a running job."""
    runtime.session.stop_server()


def print_progress(job: dict) -> None:
    """An `on_progress` for scripts: one line per change, e.g. 'Glimpse3D: Step 12/50 · ETA 8 s'."""
    runtime.say(f"Glimpse3D: {progress_text(job)}")
