"""The add-on's door to the server's protocol module, `inference_server/protocol.py`.

Routes, job states, error codes, parameter ranges, limits, output-folder names and the ready
line exist once, there; the add-on imports them from here. Inside the built extension the
server package is bundled beside the add-on files; from the repository it is a top-level
package on sys.path (as for camera_math). The module imports the standard library only.
"""
from __future__ import annotations

try:
    from ..inference_server import protocol  # inside the built extension
except ImportError:
    from inference_server import protocol  # from the repository, its root on sys.path

__all__ = ["protocol"]
