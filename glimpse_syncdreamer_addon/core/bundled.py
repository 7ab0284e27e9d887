"""The add-on's one door to the server code it bundles: `inference_server`'s protocol, cameras,
errors, proxy mesh, checkpoint places and download progress lines.

    from .bundled import protocol          # inference_server.protocol
    from .bundled import cameras           # inference_server.cameras
    from .bundled import checkpoints       # inference_server.generation.checkpoints

Where the server package is, is decided once, from the files (bundle_paths.INSIDE_EXTENSION),
not by trying imports: the built extension carries `inference_server/` inside the add-on
package (the zip root is the package), so it is a subpackage; from the repository it is the
top-level package beside the add-on. An import that fails then fails loudly, with the real
error.

Each module is imported on first use (PEP 562 `__getattr__`), so reaching the protocol needs
the standard library only, and numpy is imported only by what uses cameras or the proxy mesh.
"""
from __future__ import annotations

from importlib import import_module

from .bundle_paths import INSIDE_EXTENSION

# The add-on package (this module is "<package>.core.bundled").
ADDON_PACKAGE = __package__.rpartition(".")[0]
SERVER_PACKAGE = f"{ADDON_PACKAGE}.inference_server" if INSIDE_EXTENSION else "inference_server"

# name here -> module inside the server package
MODULES = {
    "protocol": "protocol",
    "cameras": "cameras",
    "errors": "errors",
    "proxy_mesh": "proxy_mesh",
    "checkpoints": "generation.checkpoints",
    "download": "generation.download",
}

__all__ = list(MODULES)


def __getattr__(name):
    relative = MODULES.get(name)
    if relative is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(f"{SERVER_PACKAGE}.{relative}")
    globals()[name] = module  # later look-ups skip this function
    return module


def __dir__():
    return sorted(set(globals()) | set(__all__))
