"""A turntable video of the sixteen views: .gif with Pillow, .mp4 with imageio + imageio-ffmpeg."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError, SetupError
from .staging import replaced_whole

VIDEO_FORMATS = (".gif", ".mp4")
MAX_FPS = 60


def views_to_video(image_paths, output_path, fps: float = 8, loops: int = 1) -> Path:
    """Write the images, in order, as a video at `output_path` and return its absolute path.

    The suffix picks the format (.gif or .mp4). `loops` is how many times the whole sequence
    is repeated in the file; a GIF also plays on repeat in viewers. The file appears only
    when it is complete.
    """
    output_path = Path(output_path).expanduser().absolute()
    suffix = output_path.suffix.lower()
    if suffix not in VIDEO_FORMATS:
        raise InputError(f"cannot write a video as {output_path.name}: name it .gif or .mp4", code="bad_parameter")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= MAX_FPS:
        raise InputError(f"fps must be a number above 0 and at most {MAX_FPS}, got {fps!r}", code="bad_parameter")
    if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
        raise InputError(f"loops must be a whole number of at least 1, got {loops!r}", code="bad_parameter")
    frames = _read_frames(image_paths)
    write = _write_gif if suffix == ".gif" else _write_mp4
    if suffix == ".mp4":
        _require_ffmpeg()

    output_path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(output_path, keep_suffix=True) as partial:
        write(frames * loops, partial, fps)
    return output_path


def _read_frames(image_paths) -> list:
    paths = [Path(p) for p in image_paths]
    if not paths:
        raise InputError("no images to make a video of", code="bad_parameter")
    frames = []
    for path in paths:
        with Image.open(path) as image:
            frames.append(image.convert("RGB"))
    sizes = {frame.size for frame in frames}
    if len(sizes) > 1:
        raise InputError(f"the images for a video must all have the same size, got {sorted(sizes)}",
                         code="bad_parameter")
    return frames


def _write_gif(frames, path: Path, fps: float) -> None:
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=round(1000 / fps), loop=0, disposal=1)


def _require_ffmpeg() -> None:
    try:
        import imageio  # noqa: F401  (only checking that it is there)
        import imageio_ffmpeg  # noqa: F401
    except ImportError as error:
        raise SetupError(f"writing .mp4 needs the packages imageio and imageio-ffmpeg ({error}); install them "
                         "with pip in the server's Python, or write a .gif instead", code="ffmpeg_missing") from error


def _write_mp4(frames, path: Path, fps: float) -> None:
    import imageio.v2 as imageio

    # yuv420p and even sizes: the mp4 that every player opens
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", quality=8,
                            pixelformat="yuv420p", macro_block_size=2) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame))
