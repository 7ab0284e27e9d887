"""Glimpse3D SyncDreamer inference server, command line and Python API.

This package is imported inside Blender (for `inference_server.cameras`), where there is no
torch and no Pillow, so importing it must stay cheap: the API names below are resolved lazily,
on first use, through the module-level `__getattr__`.

    from inference_server import generate_multiview
    paths = generate_multiview("cat.png", "out/", elevation=30.0, random_weights=True)
"""
from importlib import import_module

from .version import __version__

# public name -> module (relative to this package) that defines it
_LAZY_NAMES = {
    "generate_multiview": ".generation.api",
    "get_service": ".generation.api",
    "cleanup": ".generation.api",
    "SyncDreamerService": ".generation.service",
    "segment_foreground": ".generation.segmentation",
    "preprocess_for_syncdreamer": ".generation.preprocess",
    "get_camera_matrices": ".cameras",
    "views_to_video": ".view_set.video",
}

__all__ = ["__version__", *_LAZY_NAMES]


def __getattr__(name):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module_name, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
