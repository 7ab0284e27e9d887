"""What the HTTP routes do, without the HTTP: checked requests in, job records and files out.

`ServerApp` ties the pipeline (and so the model), a job store (queue + worker) and the output
root together; app.py maps the routes onto it. Everything a job needs is checked here, at
submit time, before any model time is spent; a queued job then holds the compressed image
file, never a decoded image.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import io
import ipaddress
import logging
import re
import threading
from pathlib import Path, PurePosixPath, PureWindowsPath

from .. import protocol
from ..errors import InputError
from ..generation.images import load_image
from ..generation.params import GenerationParams, job_options, parse_params
from ..generation.pipeline import GenerationRequest, Pipeline, check_request
from ..generation.preprocess import preprocess_for_syncdreamer
from ..version import __version__
from ..view_set.reading import set_files
from ..view_set.staging import remove_leftovers
from .jobs import JobManager, JobOutput, JobStore, new_job_id
from .settings import ServerSettings

log = logging.getLogger("glimpse")
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_DECODE_WAIT_S = 120.0  # longest a request waits for its turn to decode an image


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def no_such_job(job_id) -> InputError:
    """The 404 for a job id the server does not know."""
    return InputError(f"no job with id {job_id!r}; list the jobs with GET /v1/jobs",
                      http_status=404, code=protocol.ErrorCode.NO_SUCH_JOB)


def clean_input_name(filename) -> str:
    """The base name of the uploaded file (recorded in cameras.json, never used as a path)."""
    if filename is None:
        return protocol.INPUT_FILE
    if not isinstance(filename, str) or len(filename) > protocol.MAX_FILENAME_CHARS:
        raise InputError(f"'filename' must be a text of at most {protocol.MAX_FILENAME_CHARS} characters",
                         code=protocol.ErrorCode.BAD_FILENAME)
    if any(ord(char) < 32 for char in filename):
        raise InputError("'filename' must not contain control characters", code=protocol.ErrorCode.BAD_FILENAME)
    name = PureWindowsPath(PurePosixPath(filename).name).name
    return name or protocol.INPUT_FILE


def job_folder_name(input_file: str, job_id: str) -> str:
    """`<input stem>_<job id>`, with the stem reduced to safe characters."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(input_file).stem).strip("_")[:40]
    return f"{stem or 'input'}_{job_id}"


def decode_image_b64(text) -> bytes:
    if text is None:
        raise InputError("the request has no image: send it base64-encoded in 'image_b64'",
                         code=protocol.ErrorCode.MISSING_IMAGE)
    if not isinstance(text, str):
        raise InputError("'image_b64' must be a base64 text", code=protocol.ErrorCode.BAD_BASE64)
    text = _DATA_URL_PREFIX.sub("", text.strip(), count=1)
    text = "".join(text.split())  # line breaks from encoders that wrap lines
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"'image_b64' is not valid base64 ({exc}); encode the file's bytes with "
                         "standard base64", code=protocol.ErrorCode.BAD_BASE64) from None
    if not data:
        raise InputError("the image is empty (0 bytes); send a PNG, JPEG or WebP file",
                         code=protocol.ErrorCode.EMPTY_IMAGE)
    return data


class ServerApp:
    """The server's state and the operations behind the routes."""

    def __init__(self, pipeline: Pipeline, settings: ServerSettings | None = None, jobs: JobStore = None):
        settings = settings or ServerSettings()
        self.pipeline = pipeline
        self.service = pipeline.service
        self.settings = settings
        self.output_root = Path(settings.output_root).expanduser().resolve()
        self.local_only = is_loopback(settings.host)
        self.shutdown_requested = threading.Event()
        # decoding an image can take hundreds of MB: only this many at once (previews and job checks)
        self._decode_gate = threading.BoundedSemaphore(max(1, settings.preview_concurrency))
        self.jobs = jobs or JobManager(self._run_job, idle_seconds=settings.idle_unload_s,
                                       on_idle=self._idle_unload, max_queue=settings.max_queue)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        for leftover in remove_leftovers(self.output_root):
            log.info("removed %s, left by a run that was killed while writing", leftover)
        self.jobs.start()
        if self.service.info()["loaded"]:  # preloaded: the idle timer runs from now
            self.jobs.note_activity()

    def stop(self, timeout=30.0):
        """Cancel queued and running jobs, stop the worker, free the model."""
        stopped = self.jobs.shutdown(timeout)
        if stopped:
            self.service.unload_model()
        return stopped

    def request_shutdown(self):
        self.shutdown_requested.set()

    # --- routes ----------------------------------------------------------------------------

    def health(self) -> dict:
        info = self.service.info()
        return {
            "version": __version__,
            "device": info["device"],
            "precision": info["precision"],
            "model_loaded": info["loaded"],
            "checkpoint": info["checkpoint"],
            "random_weights": info["random_weights"],
            "warning": info.get("warning"),
            "gpu_memory": self.service.gpu_memory(),
            "queue_length": self.jobs.queue_length,
            "busy": self.jobs.busy,
            "idle_unload_s": self.settings.idle_unload_s,
            "cluster": self.jobs.cluster(),
        }

    def model_info(self) -> dict:
        return self.service.info()

    def load_model(self) -> dict:
        if self.service.info()["loaded"]:
            return self.service.info()
        if self.jobs.busy:  # the running job loads it; waiting here could take minutes
            raise InputError("a job is running and loads the model itself; poll GET /v1/model instead",
                             http_status=409, code=protocol.ErrorCode.BUSY)
        self.service.load_model()
        self.jobs.note_activity()  # the idle timer starts now
        return self.service.info()

    def unload_model(self) -> dict:
        if self.jobs.busy:
            raise InputError("a job is running on the model; cancel it or wait for it before unloading",
                             http_status=409, code=protocol.ErrorCode.BUSY)
        self.service.unload_model()
        return self.service.info()

    def create_job(self, image_b64: str, filename, raw_params: dict) -> dict:
        """Check everything and queue the job; `raw_params` as sent (schemas.JobParams, set fields)."""
        params = self._params(raw_params)
        filename = clean_input_name(filename)
        base = self._output_base(raw_params.get(protocol.OUTPUT_DIR_PARAM))
        data = decode_image_b64(image_b64)
        job_id = new_job_id()
        request = GenerationRequest(image=data, output=base / job_folder_name(filename, job_id), params=params,
                                    input_name=filename, options=job_options(raw_params))
        with self._decoding():
            check_request(request, image=load_image(data))  # refused now, not after the queue
        warnings = params.warnings()
        if self.service.info().get("warning"):
            warnings.insert(0, self.service.info()["warning"])
        server_params = {name: raw_params[name] for name in (protocol.OUTPUT_DIR_PARAM, *protocol.JOB_OPTION_NAMES)
                         if name in raw_params}
        return self.jobs.submit(request, params.to_json() | server_params, job_id=job_id,
                                total_steps=params.steps, warnings=warnings)

    def preview_input(self, image_b64: str, raw_params: dict) -> bytes:
        """The 256x256 PNG the model would be given for this image and these parameters: the same
        preprocessing a job runs, without the model, so the add-on can show it before generating."""
        params = self._params(raw_params)
        data = decode_image_b64(image_b64)
        with self._decoding():
            prepared = preprocess_for_syncdreamer(load_image(data), params.crop_size, params.background,
                                                  rembg_model=self.service.rembg_model)
        buffer = io.BytesIO()
        prepared.save(buffer, format="PNG")
        return buffer.getvalue()

    def list_files(self, job_id: str) -> dict:
        files = []
        for output in self._outputs(job_id):
            for name in output.files:
                path = output.folder / name
                files.append({"sample": output.sample, "name": name,
                              "size": path.stat().st_size if path.is_file() else None})
        return {"files": files}

    def file_path(self, job_id: str, sample: str, name: str) -> Path:
        if not SAFE_FILE_NAME.match(name) or ".." in name:
            raise InputError(f"bad file name {name!r}: use a name from /v1/jobs/{{id}}/files",
                             code=protocol.ErrorCode.BAD_FILE_NAME)
        if not sample.isdigit() or len(sample) > 3:
            raise InputError(f"bad sample {sample!r}: it is a number from /v1/jobs/{{id}}/files",
                             code=protocol.ErrorCode.BAD_SAMPLE)
        for output in self._outputs(job_id):
            if output.sample == int(sample) and name in output.files:
                return output.folder / name
        raise InputError(f"job {job_id} has no file {name!r} in sample {sample}", http_status=404,
                         code=protocol.ErrorCode.NO_SUCH_FILE)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _params(raw_params: dict) -> GenerationParams:
        return parse_params(raw_params, extra_names=(protocol.OUTPUT_DIR_PARAM, *protocol.JOB_OPTION_NAMES))

    @contextlib.contextmanager
    def _decoding(self):
        """Wait for a turn to decode an image (bounds the memory that decoding takes)."""
        if not self._decode_gate.acquire(timeout=_DECODE_WAIT_S):
            raise InputError("the server is busy reading other images; try again in a moment",
                             http_status=429, code=protocol.ErrorCode.BUSY)
        try:
            yield
        finally:
            self._decode_gate.release()

    def _outputs(self, job_id: str) -> list:
        outputs = self.jobs.outputs(job_id)
        if outputs is None:
            raise no_such_job(job_id)
        return outputs

    def _output_base(self, output_dir) -> Path:
        if output_dir is None:
            return self.output_root
        if not self.local_only:
            raise InputError("'output_dir' is accepted only by a server bound to this machine "
                             "(127.0.0.1); leave it out and fetch the files over HTTP",
                             code=protocol.ErrorCode.BAD_PARAMETER)
        if not isinstance(output_dir, str) or not output_dir or "\x00" in output_dir \
                or not Path(output_dir).expanduser().is_absolute():
            raise InputError(f"'output_dir' must be an absolute folder path, got {output_dir!r}",
                             code=protocol.ErrorCode.BAD_PARAMETER)
        base = Path(output_dir).expanduser()
        if base.exists() and not base.is_dir():
            raise InputError(f"'output_dir' {output_dir!r} names a file, not a folder; name a folder",
                             code=protocol.ErrorCode.BAD_OUTPUT_DIR)
        return base

    def _idle_unload(self):
        if self.service.info()["loaded"]:
            log.info("idle for %g s; unloading the model", self.settings.idle_unload_s)
            self.service.unload_model()

    def _run_job(self, job, context) -> list:
        request: GenerationRequest = job.payload
        folders = self.pipeline.run(request, progress=context.report,
                                    should_cancel=lambda: context.cancel_requested)
        return [JobOutput(sample=index, folder=folder, files=set_files(folder)) for index, folder in enumerate(folders)]
