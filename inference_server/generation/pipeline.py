"""THE generation pipeline: (image, parameters) -> written, complete view sets.

Every entry point goes through `Pipeline.run`: the command line (`generate`), the Python API
(`generate_multiview`, `SyncDreamerService.generate_and_save`), the server's job worker,
`bench`, and batch runners. So a seed gives the same files whichever way it was asked for.

    from inference_server.generation.params import parse_params
    from inference_server.generation.pipeline import GenerationRequest, Pipeline, check_request
    from inference_server.generation.service import SyncDreamerService

    pipeline = Pipeline(SyncDreamerService(random_weights=True))
    request = GenerationRequest(image="cat.png", output="out/cat", params=parse_params({"steps": 5}))
    check_request(request)              # the output rule and the image, before any model time
    folders = pipeline.run(request, progress=print, should_cancel=lambda: False)

- `request.output` is the set folder itself for one sample; with several samples it holds
  `sample_0` .. `sample_{N-1}`, one set each.
- Existing output: staging.check_destination's one rule (`overwrite` replaces only what a
  generation wrote).
- Atomic: all sets are written into one hidden `.partial` folder beside the output, which is
  renamed into place when every set is complete; a failure, a cancel or a full disk leaves
  nothing that looks finished. Leftovers of killed runs are removed by the next run writing
  into the same folder (and by the server at start).
- `progress(ProgressEvent)` is called at each phase and step; `should_cancel()` is polled as
  often, and when it returns True the run stops with GenerationCancelled.
- `set_writers`: callables `writer(folder, views, request)` that add files to each set
  (e.g. mesh.ply) before it becomes visible; `views` are the 16 PIL RGB views of that set.
- The pipeline holds one service (one loaded model); calls run one after the other on it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import protocol
from ..errors import InputError, SetupError
from ..view_set import staging
from ..view_set.writing import write_set_files
from .images import load_image, normalize_mode
from .masks import write_mesh_if_asked
from .params import GenerationParams
from .preprocess import check_has_object
from .progress import WRITING, GenerationCancelled, ProgressEvent

log = logging.getLogger("glimpse")


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: the image, where its sets go, and how it is made.

    `image`: a path, the file's bytes, or a PIL image (a queued server job holds the bytes:
    small, where a decoded image can take hundreds of MB). `input_name` is recorded in
    cameras.json. `options`: extra switches for `set_writers` (e.g. {"mesh": True}).
    """

    image: object
    output: Path
    params: GenerationParams = GenerationParams()
    input_name: str = protocol.INPUT_FILE
    overwrite: bool = False
    options: dict = field(default_factory=dict)


def request_for(image, output_dir, params: GenerationParams, *, overwrite: bool = False,
                options: dict | None = None) -> GenerationRequest:
    """The request of a Python call (generate_multiview, SyncDreamerService.generate_and_save).

    `image`: a path (str or any os.PathLike), the file's bytes or a PIL image; `output_dir`: a
    str or any os.PathLike. cameras.json records a path's file name, else protocol.INPUT_FILE.
    """
    is_path = isinstance(image, (str, os.PathLike))
    return GenerationRequest(image=image, output=Path(output_dir).expanduser(), params=params,
                             input_name=Path(image).name if is_path else protocol.INPUT_FILE,
                             overwrite=overwrite, options=dict(options or {}))


def set_folders(output, samples: int) -> list:
    """The view-set folder of each sample under `output`."""
    output = Path(output)
    if samples == 1:
        return [output]
    return [output / protocol.sample_folder_name(index) for index in range(samples)]


def open_image(image):
    """A PIL image from a request's `image` (refused with InputError when unusable)."""
    return normalize_mode(image) if hasattr(image, "mode") else load_image(image)


def check_request(request: GenerationRequest, *, overwrite_hint: str = "allow overwriting", image=None) -> None:
    """Refuse what would fail later, before any model time: the output folder (the rule of
    staging.check_destination) and an image that cannot be read or shows no object.

    `overwrite_hint` says how to allow overwriting in the caller's interface; `image`: the
    already decoded image, if the caller has it.
    """
    staging.check_destination(request.output, request.overwrite, overwrite_hint=overwrite_hint)
    check_has_object(open_image(request.image) if image is None else image, request.params.background)


class Pipeline:
    """A loaded-on-demand model (the service) and the one way from a request to written sets."""

    def __init__(self, service, set_writers=(write_mesh_if_asked,)):
        self.service = service
        self.set_writers = list(set_writers)

    def run(self, request: GenerationRequest, progress=None, should_cancel=None) -> list:
        """Generate and write the request's sets; returns their folders (absolute), by sample."""

        def report(event: ProgressEvent) -> bool:
            if progress is not None:
                progress(event)
            return bool(should_cancel is not None and should_cancel())

        output = staging.check_destination(request.output, request.overwrite)
        result = self.service.run(open_image(request.image), request.params, on_progress=report)
        if report(ProgressEvent(WRITING)):
            raise GenerationCancelled()
        try:
            with staging.Staged(output, request.overwrite) as stage:
                stage_sets = set_folders(stage.folder, request.params.samples)
                for index, (folder, views) in enumerate(zip(stage_sets, result.views)):
                    folder.mkdir(exist_ok=True)
                    metadata = self.service.set_metadata(result, index, request.input_name)
                    write_set_files(folder, views, result.model_input, metadata)
                    for writer in self.set_writers:
                        writer(folder, views, request)
                    if should_cancel is not None and should_cancel():
                        raise GenerationCancelled()
        except InputError:
            raise
        except OSError as exc:
            raise SetupError(f"cannot write the view sets to {output} ({exc.strerror or exc}); nothing was "
                             "kept. Free disk space or choose another output folder",
                             code=protocol.ErrorCode.OUTPUT_NOT_WRITABLE) from None
        folders = set_folders(output, request.params.samples)
        log.debug("wrote %d view set(s) to %s", len(folders), output)
        return folders
