"""What the HTTP routes do, without the HTTP: job requests in, job records and files out.

`ServerApp` ties the service (model), the job manager (queue + worker) and the output root
together. http_server.py only parses requests and turns answers and errors into responses.
"""
import base64
import binascii
import io
import ipaddress
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import InputError
from .images import load_image
from .jobs import JobManager, JobOutput, new_job_id
from .layout import job_folder_name, sample_folders
from .params import GenerationParams, parse_params
from .preprocess import preprocess_for_syncdreamer
from .progress import WRITING, ProgressEvent
from .version import __version__

JOB_FIELDS = ("image_b64", "filename", "params")
PREVIEW_FIELDS = ("image_b64", "params")
SERVER_ONLY_PARAMS = ("output_dir",)
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DATA_URL_PREFIX = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


@dataclass
class JobRequest:
    """A checked job request, waiting in the queue (the payload of a Job)."""

    image: object  # PIL image, already decoded and checked
    filename: str
    params: GenerationParams
    set_folder: Path  # the view set of sample 0 when samples == 1, else the parent of sample_k


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def no_such_job(job_id) -> InputError:
    """The 404 for a job id the server does not know."""
    return InputError(f"no job with id {job_id!r}; list the jobs with GET /v1/jobs",
                      http_status=404, code="no_such_job")


def clean_input_name(filename) -> str:
    """The base name of the uploaded file (recorded in cameras.json, never used as a path)."""
    if filename is None:
        return "input.png"
    if not isinstance(filename, str) or len(filename) > 255:
        raise InputError("'filename' must be a text of at most 255 characters", code="bad_filename")
    if any(ord(char) < 32 for char in filename):
        raise InputError("'filename' must not contain control characters", code="bad_filename")
    name = PureWindowsPath(PurePosixPath(filename).name).name
    return name or "input.png"


def decode_image_b64(text) -> bytes:
    if text is None:
        raise InputError("the request has no image: send it base64-encoded in 'image_b64'",
                         code="missing_image")
    if not isinstance(text, str):
        raise InputError("'image_b64' must be a base64 text", code="bad_base64")
    text = _DATA_URL_PREFIX.sub("", text.strip(), count=1)
    text = "".join(text.split())  # line breaks from encoders that wrap lines
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"'image_b64' is not valid base64 ({exc}); encode the file's bytes with "
                         "standard base64", code="bad_base64") from None
    if not data:
        raise InputError("the image is empty (0 bytes); send a PNG, JPEG or WebP file", code="empty_image")
    return data


class ServerApp:
    """The server's state and the operations behind the routes."""

    def __init__(self, service, output_root, *, host="127.0.0.1", idle_unload_s=0.0):
        self.service = service
        self.output_root = Path(output_root).expanduser().resolve()
        self.host = host
        self.local_only = is_loopback(host)
        self.idle_unload_s = float(idle_unload_s or 0)
        self.shutdown_requested = threading.Event()
        self.jobs = JobManager(self._run_job, idle_seconds=self.idle_unload_s, on_idle=self._idle_unload)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
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
            "idle_unload_s": self.idle_unload_s,
        }

    def model_info(self) -> dict:
        return self.service.info()

    def load_model(self) -> dict:
        if self.service.info()["loaded"]:
            return self.service.info()
        if self.jobs.busy:  # the running job loads it; waiting here could take minutes
            raise InputError("a job is running and loads the model itself; poll GET /v1/model instead",
                             http_status=409, code="busy")
        self.service.load_model()
        self.jobs.note_activity()  # the idle timer starts now
        return self.service.info()

    def unload_model(self) -> dict:
        if self.jobs.busy:
            raise InputError("a job is running on the model; cancel it or wait for it before unloading",
                             http_status=409, code="busy")
        self.service.unload_model()
        return self.service.info()

    def create_job(self, body) -> dict:
        raw_params, params = _request_params(body, JOB_FIELDS, "a job")
        filename = clean_input_name(body.get("filename"))
        base = self._output_base(raw_params.get("output_dir"))
        image = load_image(decode_image_b64(body.get("image_b64")))  # refused here, not in the queue
        job_id = new_job_id()
        request = JobRequest(image=image, filename=filename, params=params,
                             set_folder=base / job_folder_name(filename, job_id))
        warnings = params.warnings()
        if self.service.info().get("warning"):
            warnings.insert(0, self.service.info()["warning"])
        return self.jobs.submit(request, params.to_json() | _server_params(raw_params), job_id=job_id,
                                total_steps=params.steps, warnings=warnings)

    def preview_input(self, body) -> bytes:
        """The 256x256 PNG the model would be given for this image and these parameters: the same
        preprocessing a job runs, without the model, so the add-on can show it before generating."""
        _, params = _request_params(body, PREVIEW_FIELDS, "a preview")
        image = load_image(decode_image_b64(body.get("image_b64")))
        prepared = preprocess_for_syncdreamer(image, params.crop_size, params.background,
                                              rembg_model=self.service.rembg_model)
        buffer = io.BytesIO()
        prepared.save(buffer, format="PNG")
        return buffer.getvalue()

    def list_files(self, job_id: str) -> dict:
        outputs = self._outputs(job_id)
        files = []
        for output in outputs:
            for name in output.files:
                path = output.folder / name
                files.append({"sample": output.sample, "name": name,
                              "size": path.stat().st_size if path.is_file() else None})
        return {"files": files}

    def file_path(self, job_id: str, sample: str, name: str) -> Path:
        if not SAFE_FILE_NAME.match(name) or ".." in name:
            raise InputError(f"bad file name {name!r}: use a name from /v1/jobs/{{id}}/files",
                             code="bad_file_name")
        if not sample.isdigit():
            raise InputError(f"bad sample {sample!r}: it is a number from /v1/jobs/{{id}}/files",
                             code="bad_sample")
        for output in self._outputs(job_id):
            if output.sample == int(sample) and name in output.files:
                return output.folder / name
        raise InputError(f"job {job_id} has no file {name!r} in sample {sample}", http_status=404,
                         code="no_such_file")

    # --- helpers ---------------------------------------------------------------------------

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
                             code="bad_parameter")
        if not isinstance(output_dir, str) or not output_dir or not Path(output_dir).expanduser().is_absolute():
            raise InputError(f"'output_dir' must be an absolute folder path, got {output_dir!r}",
                             code="bad_parameter")
        return Path(output_dir).expanduser()

    def _idle_unload(self):
        if self.service.info()["loaded"]:
            print(f"glimpse: idle for {self.idle_unload_s:g} s; unloading the model", file=sys.stderr, flush=True)
            self.service.unload_model()

    def _run_job(self, job, context) -> list:
        request: JobRequest = job.payload
        result = self.service.run(request.image, request.params, on_progress=context.report)
        context.report(ProgressEvent(WRITING))
        context.raise_if_cancelled()
        folders = sample_folders(request.set_folder, request.params.samples)
        written = self.service.write_sets(result, folders, input_file=request.filename)
        return [JobOutput(sample=index, folder=folder, files=tuple(files))
                for index, (folder, files) in enumerate(written)]


def _request_params(body, fields: tuple, what: str):
    """(raw params, checked params) of a request body that may hold only `fields`."""
    if not isinstance(body, dict):
        shape = ", ".join("\"params\": {...}" if name == "params" else f"\"{name}\": ..." for name in fields)
        raise InputError(f"the body must be a JSON object: {{{shape}}}", code="bad_json")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; {what} takes {', '.join(fields)}",
                         code="unknown_field")
    raw_params = body.get("params") or {}
    return raw_params, parse_params(raw_params, extra_names=SERVER_ONLY_PARAMS)


def _server_params(raw_params: dict) -> dict:
    return {name: raw_params[name] for name in SERVER_ONLY_PARAMS if name in raw_params}
