"""Generate and import: the work behind the Generate and Import operators, the batch queue and
the public script API (api.py, `glimpse3d_api`), so that none of them is the others' helper
library. `generate_views` and `import_views` block (timers do not run while a script runs) and
raise a `Glimpse3DError` (core/api_errors.py) for every failure; `submit_next` sends the batch
queue's next image, and the timer imports it when it is done."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from ..core import batch_queue as bq
from ..core import job_runner as jr
from ..core.api_errors import CancelledError, InputError, ServerError, SetupError, classify
from ..core.client import ServerError as _ClientError
from ..core.import_options import ImportOptions, ImportPlan
from ..core.job_request import JobRequest, build_params, new_seed, read_image
from ..core.server_process import ServerStartError
from ..core.view_sets import CAMERAS_FILE
from . import input_image, runtime, scene_import
from .props import GENERATION_OPTION_NAMES
from .settings import server_settings


@dataclass(frozen=True)
class Result:
    """What a call made, one entry per view set (a generation with samples=N makes N sets)."""

    folders: list = field(default_factory=list)  # str: the set folders on disk (an imported strip: its file)
    collections: list = field(default_factory=list)  # bpy.types.Collection ([] when not imported)
    cameras: list = field(default_factory=list)  # dict: each set's cameras.json ({} when it has none)
    seed: int | None = None  # the seed used (generate_views)


def generate_views(image, *, elevation: float = 30.0, crop_size: int = 200, cfg_scale: float = 2.0,
                   steps: int = 50, seed: int | None = 42, samples: int = 1, batch_views: int = 0,
                   background: str = "auto", name: str | None = None, import_result: bool = True,
                   on_progress=None, context=None, **import_options) -> Result:
    """Generate the sixteen views of the object in `image` (a file path or a bpy.types.Image)
    and, with `import_result`, import each set into the scene.

    seed=None picks a random seed (Result.seed says which). name: the sets' name in the scene
    (default: the image's own name). on_progress(job): called with each new job snapshot (the
    protocol's job dict; `print_progress` prints one line). import_options: the keywords of
    `import_views` (plane_distance, shader, pack_images, ...). Starts the server on first use.
    """
    context = context or bpy.context
    options = _import_options(import_result=import_result, **import_options)
    try:
        request, set_name = job_request(image, elevation=elevation, crop_size=crop_size, cfg_scale=cfg_scale,
                                        steps=steps, seed=seed, samples=samples, batch_views=batch_views,
                                        background=background)
        settings = server_settings(context)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    plan = ImportPlan(options, name or set_name)
    seed = request.params["seed"]

    sent = []  # a job was accepted: a server that fails from then on broke, it was not missing

    def follow(event):
        if event.kind == jr.JOB_SUBMITTED:
            sent.append(True)
        if on_progress is not None and event.kind in (jr.JOB_SUBMITTED, jr.JOB_PROGRESS):
            on_progress(event.job)

    session = runtime.session
    try:
        end = session.run_blocking(request, settings, on_event=follow, tag=plan)
    except ServerStartError as exc:
        raise SetupError(str(exc)) from None
    except _ClientError as exc:
        raise classify(exc.message, exc.code) from None
    except RuntimeError as exc:  # "a generation is already running"
        raise ServerError(str(exc), code="busy") from None
    _raise_unless_done(end, server_was_running=bool(sent))

    folders = list(end.folders)
    collections = []
    if import_result:
        try:
            collections = import_sets(context, folders, options, plan.set_names(len(folders)))
        except ValueError as exc:  # ViewSetError too
            raise InputError(f"The views were generated in {folders[0]} but could not be imported: {exc}") from None
    return Result(folders, collections, [_cameras_json(folder) for folder in folders], seed)


def import_views(path, *, name: str | None = None, context=None, plane_distance: float = 0.0,
                 key_white: bool = False, show_all_planes: bool = False, set_scene_settings: bool = False,
                 bind_markers: bool = False, side_by_side: bool = True, shader: str = "EMISSION",
                 interpolation: str = "Closest", relative_paths: bool = True, pack_images: bool = False) -> Result:
    """Import one view set (a set folder, a folder of view_00..15.png, or a 4096x256 strip PNG).

    Importing the same source again replaces its set. shader: one of SHADERS; interpolation: one
    of INTERPOLATIONS. bind_markers: the markers switch the scene camera (off: the scene camera
    and the artist's markers stay as they are). set_scene_settings: render settings and active
    camera for exact renders (binds the markers too). Raises InputError for a bad set or option.
    """
    options = _import_options(plane_distance=plane_distance, key_white=key_white, show_all_planes=show_all_planes,
                              set_scene_settings=set_scene_settings, bind_markers=bind_markers,
                              side_by_side=side_by_side, shader=shader, interpolation=interpolation,
                              relative_paths=relative_paths, pack_images=pack_images)
    try:
        collection = scene_import.import_view_set(context or bpy.context, path, name=name, **options.scene_kwargs())
    except ValueError as exc:  # ViewSetError too
        raise InputError(str(exc)) from None
    folder = collection[scene_import.SOURCE_PROPERTY]
    return Result([folder], [collection], [_cameras_json(folder)])


def cancel() -> None:
    """Cancel the running generation. In background mode, wait until the server has stopped it."""
    if bpy.app.background:
        runtime.session.cancel_blocking()
    else:
        runtime.session.cancel()


# -- the batch queue ------------------------------------------------------------------------
def job_options(settings) -> dict:
    """The panel's generation settings as keywords of generate_views (seed None: random)."""
    options = {name: getattr(settings, name) for name in GENERATION_OPTION_NAMES if name != "random_seed"}
    if settings.random_seed:
        options["seed"] = None
    return options


def submit_next(context) -> None:
    """UI mode, from the timer and Start Queue: send the batch queue's next item when no job runs;
    the timer imports it when done."""
    queue, session = runtime.queue, runtime.session
    if not queue.running or session.state.busy:
        return
    item = queue.next_item()
    if item is None:
        return
    settings = context.scene.glimpse3d
    try:
        request, name = job_request(item.path, **job_options(settings))
        session.submit(request, server_settings(context), tag=ImportPlan(ImportOptions.pick(settings), name, item.id))
    except (ValueError, ServerStartError, _ClientError, RuntimeError) as exc:
        queue.finish(item.id, bq.FAILED, str(exc))


# -- helpers ----------------------------------------------------------------------------------
def job_request(image, *, elevation, crop_size, cfg_scale, steps, seed, samples, batch_views,
                background) -> tuple:
    """(JobRequest, the image's own name) for `image` (a path or a bpy.types.Image); seed None
    picks one. Raises ValueError saying what to change. (The sidebar's jobs are built here too.)"""
    is_datablock = isinstance(image, bpy.types.Image)
    path = input_image.input_file(image, "") if is_datablock else Path(image)
    image_bytes, filename = read_image(path)
    params = build_params(elevation=elevation, crop_size=crop_size, cfg_scale=cfg_scale, steps=steps,
                          seed=new_seed() if seed is None else seed, samples=samples, batch_views=batch_views,
                          background=background)
    return JobRequest(image_bytes, filename, params), Path(image.name if is_datablock else path).stem


def import_sets(context, folders, options: ImportOptions, names=()) -> list:
    """Import every finished set folder; returns the collections (main thread only)."""
    names = list(names) + [None] * (len(folders) - len(names))
    return [scene_import.import_view_set(context, folder, name=name, **options.scene_kwargs())
            for folder, name in zip(folders, names)]


def _import_options(**values) -> ImportOptions:
    try:
        return ImportOptions(**values)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _raise_unless_done(end, *, server_was_running: bool) -> None:
    if end.kind == jr.JOB_DONE:
        return
    message = end.message or "The generation did not finish."
    if end.kind == jr.JOB_CANCELLED:
        raise CancelledError(message, code="cancelled")
    if end.kind == jr.SERVER_FAILED:
        kind = ServerError if server_was_running else SetupError
        raise kind(message, code="server_failed")
    raise classify(message, end.code)


def _cameras_json(folder) -> dict:
    path = Path(folder) / CAMERAS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))
