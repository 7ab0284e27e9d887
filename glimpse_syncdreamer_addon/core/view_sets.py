"""Find, check and describe one set of sixteen generated views, ready to be placed in a scene.

No bpy here (stdlib + numpy), so all of it is tested in plain Python. Three layouts are read:

- a set folder with `cameras.json` (docs/contracts.md section 2), written by our server;
- a folder holding only `view_00.png` ... `view_15.png` (other tools): the model's cameras are
  fixed, so they come from `camera_math`;
- the reference implementation's output: one PNG, 4096 wide and 256 high, the sixteen views side
  by side (view i in columns 256*i ... 256*i+255).

Every problem is raised as `ViewSetError` with a message that says what is wrong and what to do.
"""
from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import camera_math
from .bundled import protocol

FORMAT_NAME = protocol.FORMAT_NAME
SUPPORTED_FORMAT_VERSIONS = tuple(range(1, protocol.FORMAT_VERSION + 1))
VIEW_COUNT = protocol.VIEW_COUNT
VIEW_SIZE = (protocol.VIEW_SIZE, protocol.VIEW_SIZE)  # (width, height) of one view written by the model
STRIP_SIZE = (VIEW_SIZE[0] * VIEW_COUNT, VIEW_SIZE[1])
CAMERAS_FILE = protocol.CAMERAS_FILE

LAYOUT_CAMERAS_JSON = "cameras_json"
LAYOUT_VIEWS_ONLY = "views_only"
LAYOUT_STRIP = "strip"

_VIEW_FILE_PATTERN = re.compile(r"^view_(\d{2})\.png$", re.IGNORECASE)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ViewSetError(ValueError):
    """The given path is not a usable view set; the message tells the user why and what to do."""


@dataclass(frozen=True)
class ViewImage:
    """Where the pixels of one view are: a whole PNG, or a block of columns in a strip PNG."""

    path: Path
    x_offset: int = 0  # first pixel column of the view inside `path`
    in_strip: bool = False


@dataclass(frozen=True)
class View:
    index: int
    image: ViewImage
    camera_to_world: np.ndarray  # 4x4, Blender camera axes (x right, y up, looking along -z), rig space
    K: np.ndarray  # 3x3 pixel intrinsics at `ViewSet.image_size`, OpenCV convention
    azimuth_deg: float
    elevation_deg: float
    distance: float


@dataclass(frozen=True)
class ViewSet:
    name: str  # collection name: the folder's name, or the strip's
    source: Path  # resolved folder or strip file; the same source is the same set on re-import
    layout: str  # one of the LAYOUT_* names
    image_size: tuple[int, int]  # (width, height) of every view
    views: tuple[View, ...]
    warning: str | None = None  # e.g. "RANDOM WEIGHTS: ..." from cameras.json
    metadata: dict = field(default_factory=dict)  # cameras.json as read ({} for other layouts)


@dataclass(frozen=True)
class PlanePlacement:
    """An image plane in its camera's local space (Blender axes) that exactly fills the frustum."""

    center: tuple[float, float, float]
    width: float
    height: float


# ---------------------------------------------------------------------------------------------
# Finding the layout


def read_view_set(path) -> ViewSet:
    """Read the set at `path`: a set folder, a views-only folder, a strip PNG, or a file inside a
    set folder (its `cameras.json` or one of its `view_XX.png`, as a file browser hands them)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ViewSetError(f"{path} does not exist. Choose a generated set folder or a strip PNG.")
    path = path.resolve()
    if path.is_file():
        if path.name.lower() == CAMERAS_FILE or _VIEW_FILE_PATTERN.match(path.name):
            return _read_folder(path.parent)
        return _read_strip(path)
    return _read_folder(path)


def _read_folder(folder: Path) -> ViewSet:
    if (folder / CAMERAS_FILE).is_file():
        return _read_cameras_json_folder(folder)
    if any(_VIEW_FILE_PATTERN.match(p.name) for p in folder.iterdir()):
        return _read_views_only_folder(folder)
    strips = sorted(p for p in folder.glob("*.png") if _png_size_or_none(p) == STRIP_SIZE)
    if len(strips) == 1:
        return _read_strip(strips[0])
    if strips:
        names = ", ".join(p.name for p in strips[:4]) + (", ..." if len(strips) > 4 else "")
        raise ViewSetError(
            f"{folder} holds {len(strips)} strips of sixteen views ({names}). "
            "Choose one of them as a file."
        )
    raise ViewSetError(
        f"{folder} is not a view set: it holds no {CAMERAS_FILE}, no view_00.png ... view_15.png "
        f"and no {STRIP_SIZE[0]}x{STRIP_SIZE[1]} strip PNG. Choose the folder a generation wrote "
        "(one folder per sample) or the strip file itself."
    )


# ---------------------------------------------------------------------------------------------
# The three layouts


def _read_cameras_json_folder(folder: Path) -> ViewSet:
    cameras_path = folder / CAMERAS_FILE
    try:
        document = json.loads(cameras_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ViewSetError(f"Cannot read {cameras_path}: {error}.") from error
    except json.JSONDecodeError as error:
        raise ViewSetError(
            f"{cameras_path} is not valid JSON ({error.msg} at line {error.lineno}). "
            "The file is damaged: generate the set again, or delete cameras.json to import the "
            "views with the model's fixed cameras."
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ViewSetError(
            f"{cameras_path} is not a Glimpse3D view set description (format {found!r}, "
            f"expected {FORMAT_NAME!r})."
        )
    version = document.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        newest = max(SUPPORTED_FORMAT_VERSIONS)
        if isinstance(version, int) and version > newest:
            advice = "It was written by a newer Glimpse3D: update the add-on."
        else:
            advice = "The file is damaged or was not written by Glimpse3D."
        raise ViewSetError(
            f"{cameras_path} has format version {version!r}; this add-on reads version "
            f"{newest}. {advice}"
        )

    image_size = _image_size_from(document.get("image_size"), cameras_path)
    entries = document.get("views")
    if not isinstance(entries, list) or len(entries) != VIEW_COUNT:
        count = len(entries) if isinstance(entries, list) else 0
        raise ViewSetError(
            f"{cameras_path} lists {count} views; a SyncDreamer set has {VIEW_COUNT}. "
            "Generate the set again."
        )
    entries = sorted(entries, key=lambda entry: entry.get("index", -1) if isinstance(entry, dict) else -1)
    indices = [entry.get("index") if isinstance(entry, dict) else None for entry in entries]
    if indices != list(range(VIEW_COUNT)):
        raise ViewSetError(
            f"{cameras_path} lists view indices {indices}; expected 0 ... {VIEW_COUNT - 1} "
            "once each. Generate the set again."
        )

    files = [folder / str(entry.get("file", f"view_{entry['index']:02d}.png")) for entry in entries]
    _check_view_files(files, image_size, folder)
    views = tuple(
        _view_from_entry(entry, ViewImage(file), cameras_path) for entry, file in zip(entries, files)
    )
    warning = document.get("warning")
    return ViewSet(
        name=folder.name,
        source=folder,
        layout=LAYOUT_CAMERAS_JSON,
        image_size=image_size,
        views=views,
        warning=str(warning) if warning else None,
        metadata=document,
    )


def _read_views_only_folder(folder: Path) -> ViewSet:
    files = [folder / f"view_{index:02d}.png" for index in range(VIEW_COUNT)]
    _check_view_files(files, VIEW_SIZE, folder)
    views = tuple(
        _view_from_entry(entry, ViewImage(file), None)
        for entry, file in zip(camera_math.fixed_target_views(), files)
    )
    return ViewSet(
        name=folder.name, source=folder, layout=LAYOUT_VIEWS_ONLY, image_size=VIEW_SIZE, views=views
    )


def _read_strip(path: Path) -> ViewSet:
    size = _png_size_or_none(path)
    if size is None:
        raise ViewSetError(
            f"{path.name} is not a PNG image. Choose a generated set folder, or a PNG strip of "
            f"sixteen views ({STRIP_SIZE[0]}x{STRIP_SIZE[1]} pixels)."
        )
    if size != STRIP_SIZE:
        raise ViewSetError(
            f"{path.name} is {size[0]}x{size[1]} pixels; a strip of sixteen views is "
            f"{STRIP_SIZE[0]}x{STRIP_SIZE[1]} (width x height, views side by side). "
            "Choose a strip written by SyncDreamer, or a set folder."
        )
    width = VIEW_SIZE[0]
    views = tuple(
        _view_from_entry(entry, ViewImage(path, x_offset=width * entry["index"], in_strip=True), None)
        for entry in camera_math.fixed_target_views()
    )
    return ViewSet(
        name=_strip_set_name(path), source=path, layout=LAYOUT_STRIP, image_size=VIEW_SIZE, views=views
    )


def _strip_set_name(path: Path) -> str:
    # The reference writes <output>/0.png, 1.png ...: a bare number says nothing in the outliner.
    if path.stem.isdigit():
        return f"{path.parent.name}_{path.stem}"
    return path.stem


# ---------------------------------------------------------------------------------------------
# Checks and conversions


def _check_view_files(files, image_size, folder: Path) -> None:
    missing = [file.name for file in files if not file.is_file()]
    if missing:
        raise ViewSetError(
            f"{folder} is missing {len(missing)} of {VIEW_COUNT} views: {', '.join(missing)}. "
            "The set is incomplete: generate it again or copy the missing files into the folder."
        )
    wrong = []
    for file in files:
        size = _png_size_or_none(file)
        if size != tuple(image_size):
            wrong.append(f"{file.name} is {'not a PNG' if size is None else f'{size[0]}x{size[1]}'}")
    if wrong:
        raise ViewSetError(
            f"Every view must be a {image_size[0]}x{image_size[1]} PNG, but in {folder}: "
            f"{'; '.join(wrong)}. Replace those files with the generated views."
        )


def _image_size_from(value, where: Path) -> tuple[int, int]:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(number, int) and number > 0 for number in value)
    ):
        return int(value[0]), int(value[1])
    raise ViewSetError(f"{where}: image_size is {value!r}; expected [width, height] in pixels.")


def _view_from_entry(entry: dict, image: ViewImage, where: Path | None) -> View:
    index = entry["index"]

    def problem(text: str) -> ViewSetError:
        return ViewSetError(f"{where}: view {index}: {text}. Generate the set again.")

    try:
        K = np.asarray(entry["K"], dtype=np.float64)
        if "camera_to_world_blender" in entry:
            camera_to_world = np.asarray(entry["camera_to_world_blender"], dtype=np.float64)
        else:
            camera_to_world = camera_math.blender_camera_to_world(entry["world_to_camera_opencv"])
        azimuth_deg = float(entry["azimuth_deg"])
        elevation_deg = float(entry["elevation_deg"])
        distance = float(entry["distance"])
    except KeyError as error:
        raise problem(f"{error.args[0]} is missing") from error
    except (TypeError, ValueError) as error:
        raise problem(f"a camera value is not a number ({error})") from error
    if K.shape != (3, 3) or camera_to_world.shape != (4, 4):
        raise problem(f"K must be 3x3 and the camera matrices 4x4, got {K.shape} and {camera_to_world.shape}")
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(camera_to_world))):
        raise problem("a camera value is not finite")
    if not math.isclose(K[0, 0], K[1, 1], rel_tol=1e-6) or K[0, 0] <= 0:
        raise problem(f"fx = {K[0, 0]} and fy = {K[1, 1]} differ; only square pixels are supported")
    return View(
        index=index,
        image=image,
        camera_to_world=camera_to_world,
        K=K,
        azimuth_deg=azimuth_deg,
        elevation_deg=elevation_deg,
        distance=distance,
    )


def _png_size_or_none(path: Path):
    """(width, height) from the PNG header, or None when the file is not a PNG."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


# ---------------------------------------------------------------------------------------------
# Placement math for the scene builder


def origin_depth(view: View) -> float:
    """How far in front of the camera the rig origin lies (along its viewing axis)."""
    origin_in_camera = np.linalg.inv(view.camera_to_world) @ np.array([0.0, 0.0, 0.0, 1.0])
    return float(-origin_in_camera[2])  # Blender cameras look along their -z axis


def plane_placement(view: View, image_size, distance: float | None = None) -> PlanePlacement:
    """The rectangle at `distance` in front of the camera that the image covers exactly.

    `distance` None means "through the rig origin" (the model's object centre)."""
    if distance is None:
        distance = origin_depth(view)
    if not distance > 0:
        raise ValueError(
            f"The image plane distance must be greater than zero (got {distance}); "
            f"the rig origin lies behind camera {view.index}: give a plane distance."
        )
    width_px, height_px = image_size
    fx, fy, cx, cy = view.K[0, 0], view.K[1, 1], view.K[0, 2], view.K[1, 2]
    # Pixel (u, v) (v down) at depth d sits at x = (u - cx) d / fx, y = -(v - cy) d / fy.
    left, right = -cx * distance / fx, (width_px - cx) * distance / fx
    top, bottom = cy * distance / fy, -(height_px - cy) * distance / fy
    return PlanePlacement(
        center=((left + right) / 2, (top + bottom) / 2, -distance),
        width=right - left,
        height=top - bottom,
    )


def marker_frames(frame_start: int, count: int = VIEW_COUNT) -> list[int]:
    """One timeline frame per view, in view order, so scrubbing flips through the views."""
    return [frame_start + index for index in range(count)]
