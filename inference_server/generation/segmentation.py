"""Background removal for photos without transparency, with rembg and a model file on disk.

rembg downloads its model on first use; we never let it (there may be no internet, and a
silent 170 MB download is a surprise): we look for the file ourselves and hand rembg its path.
rembg is imported only when it is needed, because importing it takes a second or more.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

from PIL import Image

from ..errors import InputError, SetupError
from .images import load_image

METHODS = ("rembg",)
DEFAULT_MODEL_FILE = "u2net.onnx"
MODEL_DOWNLOAD_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx"

_sessions = {}  # (model path, modification time) -> rembg session; loading one takes a while
_sessions_lock = threading.Lock()


def rembg_model_folder() -> Path:
    """Where rembg keeps its models: $U2NET_HOME, else $XDG_DATA_HOME/.u2net, else ~/.u2net."""
    home = os.environ.get("U2NET_HOME") or os.path.join(os.environ.get("XDG_DATA_HOME", "~"), ".u2net")
    return Path(home).expanduser()


def find_model_file(model_path=None) -> Path:
    """The background-removal model file to use, or SetupError saying where to put one."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise SetupError(f"the background-removal model {path} does not exist. Give the path of a "
                             f"u2net-style .onnx file (for example {DEFAULT_MODEL_FILE} from {MODEL_DOWNLOAD_URL}), "
                             "or send an RGBA image with a transparent background", code="rembg_model_missing")
        return path.absolute()
    path = rembg_model_folder() / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise SetupError(f"this image has no transparency, so its background must be removed, but the model "
                         f"file {path} is missing. Download {MODEL_DOWNLOAD_URL} to {path} (or set U2NET_HOME "
                         "to the folder that holds it, or give the model path), or send an RGBA image with a "
                         "transparent background instead", code="rembg_model_missing")
    return path


def segment_foreground(image, method: str = "rembg", rembg_model=None, *, model_path=None) -> Image.Image:
    """The image as RGBA with the background made transparent (the colours are kept).

    `image`: a path, bytes, a binary file object or a PIL image. `rembg_model`: the path of a
    u2net-style .onnx model file (default: u2net.onnx in rembg's model folder, see
    `rembg_model_folder`). `model_path` is the old name of `rembg_model`.
    """
    if model_path is not None:
        if rembg_model is not None:
            raise TypeError("segment_foreground got both rembg_model and its old name model_path; pass rembg_model only")
        warnings.warn("segment_foreground(model_path=...) is deprecated; pass rembg_model=... instead",
                      DeprecationWarning, stacklevel=2)
        rembg_model = model_path
    if method not in METHODS:
        raise InputError(f"unknown background-removal method {method!r}; available: {', '.join(METHODS)}",
                         code="bad_parameter")
    if not isinstance(image, Image.Image):
        image = load_image(image)
    path = find_model_file(rembg_model)
    session = _session_for(path)
    from rembg import remove

    # putalpha: the mask becomes the alpha channel and the colours stay as they are
    return remove(image.convert("RGB"), session=session, putalpha=True).convert("RGBA")


def _session_for(path: Path):
    key = (str(path), path.stat().st_mtime_ns)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            try:
                from rembg import new_session
            except ImportError as error:
                raise SetupError(f"background removal needs the rembg package ({error}); install the server's "
                                 "requirements, or send an RGBA image with a transparent background",
                                 code="rembg_missing") from error
            try:
                # the "custom" session reads the given file and never downloads
                session = new_session("u2net_custom", model_path=str(path))
            except Exception as error:  # onnxruntime's errors have no common base class
                raise SetupError(f"could not load the background-removal model {path}: {error}. "
                                 f"Replace it with a fresh copy of {DEFAULT_MODEL_FILE}",
                                 code="rembg_model_broken") from error
            _sessions.clear()  # keep one model in memory
            _sessions[key] = session
    return session
