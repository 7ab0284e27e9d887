"""The exceptions of the Python API (`glimpse3d_api`), one base class and four kinds, so a
pipeline can tell "fix the input" from "fix the setup" from "the server broke" from "someone
cancelled" without reading the message. No bpy: the session and the tests use them too.
"""
from __future__ import annotations

# Error codes of the server (inference_server/errors.py) that mean "this input cannot work".
INPUT_CODES = frozenset({
    "bad_input", "bad_parameter", "bad_filename", "not_an_image", "empty_image", "damaged_image",
    "image_too_large", "empty_object", "missing_image",
})
# Codes that mean "the machine or the installation lacks something".
SETUP_CODES = frozenset({
    "setup_error", "no_config", "no_gpu", "bad_device", "bad_precision", "no_checkpoint",
    "rembg_missing", "rembg_model_missing", "rembg_model_broken", "ffmpeg_missing", "unauthorized",
})


class Glimpse3DError(Exception):
    """Base of every error the Glimpse3D API raises; `str(error)` says what to do."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code  # the server's error code when there is one


class SetupError(Glimpse3DError):
    """The server cannot run here: no server Python, a missing package or checkpoint, a server
    that does not start or cannot be reached."""


class InputError(Glimpse3DError, ValueError):
    """The image, a parameter or a view set is unusable; nothing was generated or imported."""


class ServerError(Glimpse3DError):
    """The server failed while working on a job (out of memory, a crash, a bad answer)."""


class CancelledError(Glimpse3DError):
    """The generation was cancelled (Cancel, cancel(), or Ctrl+C in a script)."""


def classify(message: str, code: str = "") -> Glimpse3DError:
    """The API error for a failure the server reported with `code`."""
    if code in INPUT_CODES:
        return InputError(message, code=code)
    if code in SETUP_CODES:
        return SetupError(message, code=code)
    return ServerError(message, code=code)
