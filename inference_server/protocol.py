"""The contract between the inference server and its clients, in one place.

The server, the command line and the Blender add-on all import this module (the add-on through
the copy of `inference_server/` bundled in the extension, as `core/camera_math.py` does), so
it imports the standard library only: no torch, no Pillow, no web framework.

What is here: the routes, the job states, the error codes, the generation parameters with their
defaults and ranges, the size limits, the names in an output folder, and the ready line that
`serve` prints on stdout. The request and answer shapes are in `server/schemas.py` and served as
OpenAPI at `/v1/openapi.json`; docs/protocol.md is generated from that schema.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

# ---- routes ------------------------------------------------------------------------------

API_PREFIX = "/v1"
ROUTE_HEALTH = "/v1/health"
ROUTE_JOBS = "/v1/jobs"
ROUTE_JOB = "/v1/jobs/{job_id}"
ROUTE_JOB_CANCEL = "/v1/jobs/{job_id}/cancel"
ROUTE_JOB_FILES = "/v1/jobs/{job_id}/files"
ROUTE_JOB_FILE = "/v1/jobs/{job_id}/files/{sample}/{name}"
ROUTE_PREVIEW = "/v1/preview"
ROUTE_MODEL = "/v1/model"
ROUTE_MODEL_LOAD = "/v1/model/load"
ROUTE_MODEL_UNLOAD = "/v1/model/unload"
ROUTE_SHUTDOWN = "/v1/shutdown"
ROUTE_OPENAPI = "/v1/openapi.json"

TOKEN_ENV = "GLIMPSE_SERVER_TOKEN"  # where `serve` reads its bearer token

# ---- job states ----------------------------------------------------------------------------
# A job is queued, then goes through the running states in order, and ends in a final state.

QUEUED = "queued"
PREPARING = "preparing"
LOADING_MODEL = "loading_model"
SAMPLING = "sampling"
DECODING = "decoding"
WRITING = "writing"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
RUNNING_STATES = (PREPARING, LOADING_MODEL, SAMPLING, DECODING, WRITING)
FINAL_STATES = (DONE, FAILED, CANCELLED)
JOB_STATES = (QUEUED, *RUNNING_STATES, *FINAL_STATES)

# ---- error codes ---------------------------------------------------------------------------
# Every error answer is {"error": {"code": <one of these>, "message": <what to do>}}; a failed
# job carries the same object in its "error" field.


class ErrorCode:
    # the request itself
    UNAUTHORIZED = "unauthorized"  # 401: no or a wrong bearer token
    FORBIDDEN_HOST = "forbidden_host"  # 403: Host is not the server's address (DNS rebinding)
    FORBIDDEN_ORIGIN = "forbidden_origin"  # 403: sent by a web page (a browser's Origin header)
    NOT_FOUND = "not_found"  # 404: no such route
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    BAD_REQUEST = "bad_request"  # 400: malformed HTTP
    BODY_TOO_LARGE = "body_too_large"  # 413
    BAD_JSON = "bad_json"  # 400: not JSON, not an object, too deep, a number too long
    UNKNOWN_FIELD = "unknown_field"  # 400: a body field that the route does not take
    # the image
    MISSING_IMAGE = "missing_image"
    BAD_BASE64 = "bad_base64"
    EMPTY_IMAGE = "empty_image"
    NOT_AN_IMAGE = "not_an_image"  # 415
    DAMAGED_IMAGE = "damaged_image"
    IMAGE_TOO_LARGE = "image_too_large"  # 413
    IMAGE_TOO_SMALL = "image_too_small"
    EMPTY_OBJECT = "empty_object"  # fully transparent, or background removal found nothing
    BAD_FILENAME = "bad_filename"
    # parameters and the output folder
    UNKNOWN_PARAMETER = "unknown_parameter"
    BAD_PARAMETER = "bad_parameter"
    BAD_OUTPUT_DIR = "bad_output_dir"
    OUTPUT_EXISTS = "output_exists"
    OUTPUT_NOT_WRITABLE = "output_not_writable"
    # jobs and files
    NO_SUCH_JOB = "no_such_job"  # 404
    NO_SUCH_FILE = "no_such_file"  # 404
    BAD_FILE_NAME = "bad_file_name"
    BAD_SAMPLE = "bad_sample"
    QUEUE_FULL = "queue_full"  # 429, with Retry-After
    BUSY = "busy"  # 409
    SHUTTING_DOWN = "shutting_down"  # 503
    # this machine
    SETUP_ERROR = "setup_error"  # 503
    OUT_OF_MEMORY = "out_of_memory"
    REMBG_MODEL_MISSING = "rembg_model_missing"
    INTERNAL_ERROR = "internal_error"  # 500: a bug; the server log has the details


# ---- generation parameters -------------------------------------------------------------------

NO_CROP = -1
CROP_SIZE_RANGE = (64, 256)
BACKGROUND_CHOICES = ("auto", "keep", "remove")
RECOMMENDED_ELEVATION = (-10.0, 40.0)
MAX_SEED = 2**53 - 1  # the largest integer that every JSON reader (JavaScript too) keeps exactly
OUTPUT_DIR_PARAM = "output_dir"  # a job parameter of the server only: where its folder goes


@dataclass(frozen=True)
class ParamSpec:
    """One generation parameter: its JSON type, default, accepted range and a hint for people.

    kind: "number" (float), "integer", "choice" (one of `choices`) or "flag" (true/false).
    `crop_size` also takes NO_CROP below its range.
    """

    name: str
    kind: str
    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    hint: str = ""


PARAMS = (
    ParamSpec("elevation", "number", 30.0, -90.0, 90.0,
              hint="elevation of the input view in degrees; -10..40 is recommended"),
    ParamSpec("crop_size", "integer", 200, CROP_SIZE_RANGE[0], CROP_SIZE_RANGE[1],
              hint="size of the object in the 256 px input; -1 = no crop; 200 suits most objects"),
    ParamSpec("cfg_scale", "number", 2.0, 0.0, 20.0, hint="guidance scale; 2.0 is the usual value"),
    ParamSpec("steps", "integer", 50, 1, 1000, hint="DDIM sampling steps; 50 is the usual value"),
    ParamSpec("seed", "integer", 42, 0, MAX_SEED, hint="random seed"),
    ParamSpec("samples", "integer", 1, 1, 16,
              hint="independent view sets from the same input; more need more GPU memory"),
    ParamSpec("batch_views", "integer", 0, 0, 16,
              hint="views per network call; 0 = automatic, fewer need less GPU memory"),
    ParamSpec("background", "choice", "auto", choices=BACKGROUND_CHOICES,
              hint="auto: remove it unless the image has transparency"),
    ParamSpec("use_posterior_mean", "flag", False,
              hint="condition on the VAE mean instead of a sample (a little more deterministic)"),
)
PARAM_SPECS = {spec.name: spec for spec in PARAMS}
PARAM_NAMES = tuple(PARAM_SPECS)
PARAM_DEFAULTS = {spec.name: spec.default for spec in PARAMS}

# Job options: extra files for each set, beside the generation parameters (they never change the views).
JOB_OPTIONS = (
    ParamSpec("mesh", "flag", False, hint="also write mesh.ply, a coloured proxy mesh of the object, into each set"),
    ParamSpec("mesh_resolution", "integer", 128, 32, 512,
              hint="grid cells along the object's longest side in mesh.ply; 128 takes about a second, 256 a few"),
    ParamSpec("mesh_asset", "flag", False,
              hint="also write asset.glb, a light textured mesh of the object (glTF), into each set"),
)
JOB_OPTION_SPECS = {spec.name: spec for spec in JOB_OPTIONS}
JOB_OPTION_NAMES = tuple(JOB_OPTION_SPECS)

# ---- limits ------------------------------------------------------------------------------------

MIB = 1024 * 1024
DEFAULT_MAX_BODY_MB = 64.0
# A job body is {"image_b64": "...", "filename": "...", "params": {...}}: room for the rest.
BODY_ENVELOPE_BYTES = 64 * 1024
DEFAULT_MAX_QUEUE = 32  # jobs waiting; one more is answered 429
DEFAULT_PREVIEW_CONCURRENCY = 2  # images decoded at once by previews and job checks
RETRY_AFTER_S = 5  # the Retry-After of a 429
MAX_JSON_DEPTH = 32  # nesting deeper than this is refused as bad_json
MAX_NUMBER_DIGITS = 100  # a JSON number longer than this is refused as bad_json
MAX_FILENAME_CHARS = 255


# What clients read of an answer, at most, so that a broken or hostile server cannot fill their
# memory or disk (the add-on's client stops and says so beyond these):
MAX_JSON_ANSWER_BYTES = 1 * MIB  # health, job records and file lists are a few KiB
MAX_ERROR_ANSWER_BYTES = 64 * 1024  # an error's {"error": ...} (only its start is shown otherwise)
# a file of a set (a 256 px view or input.png, the 1024 px grid.png, cameras.json, transforms.json) or
# the preview PNG: all are far smaller
MAX_SET_FILE_BYTES = 64 * MIB
# mesh.ply: about 54 bytes a vertex; mesh_resolution 512 gives a few million vertices
MAX_MESH_FILE_BYTES = 1024 * MIB


def max_answer_file_bytes(name: str) -> int:
    """The most bytes a client accepts for the set file `name`."""
    return MAX_MESH_FILE_BYTES if name == MESH_FILE else MAX_SET_FILE_BYTES


def max_image_bytes(max_body_bytes: int) -> int:
    """The largest image file whose job body fits into `max_body_bytes`.

    base64 turns 3 bytes into 4 characters, so the file may be 3/4 of the body, less the room
    for the other fields.
    """
    return max(0, (int(max_body_bytes) - BODY_ENVELOPE_BYTES) // 4 * 3)


DEFAULT_MAX_BODY_BYTES = int(DEFAULT_MAX_BODY_MB * MIB)
DEFAULT_MAX_IMAGE_BYTES = max_image_bytes(DEFAULT_MAX_BODY_BYTES)

# ---- the output folder (docs/contracts.md §2) -------------------------------------------------

FORMAT_NAME = "glimpse3d-syncdreamer-views"
FORMAT_VERSION = 1
VIEW_COUNT = 16
VIEW_SIZE = 256
VIEW_FILES = tuple(f"view_{index:02d}.png" for index in range(VIEW_COUNT))
INPUT_FILE = "input.png"
GRID_FILE = "grid.png"
CAMERAS_FILE = "cameras.json"  # written last: its presence marks a complete set
TRANSFORMS_FILE = "transforms.json"
MESH_FILE = "mesh.ply"  # optional
ASSET_FILE = "asset.glb"  # optional: the textured asset
SET_FILES = (*VIEW_FILES, INPUT_FILE, GRID_FILE, CAMERAS_FILE, TRANSFORMS_FILE)
SAMPLE_FOLDER_PREFIX = "sample_"  # with several samples: <folder>/sample_0 .. sample_{N-1}
PARTIAL_MARK = ".partial-"  # hidden folders being written: .<name>.partial-<pid>-<random>


def sample_folder_name(index: int) -> str:
    return f"{SAMPLE_FOLDER_PREFIX}{index}"


# ---- the ready line ------------------------------------------------------------------------------
# `serve` prints one line on stdout when it accepts requests:
#     GLIMPSE_SERVER_READY {"port": 8765, "url": "http://127.0.0.1:8765", "pid": 1234, "version": "..."}
# An HTTPS server adds "tls_fingerprint": "AB:CD:..." (the SHA-256 of its certificate).

READY_PREFIX = "GLIMPSE_SERVER_READY"


def format_ready_line(port: int, url: str, pid: int, version: str, *, tls_fingerprint: str = "") -> str:
    info = {"port": port, "url": url, "pid": pid, "version": version}
    if tls_fingerprint:
        info["tls_fingerprint"] = tls_fingerprint
    return f"{READY_PREFIX} {json.dumps(info)}"


def parse_ready_line(line: str) -> dict | None:
    """The ready line's JSON (with "url" filled in from the port if missing), else None."""
    head, _, payload = line.strip().partition(" ")
    if head != READY_PREFIX:
        return None
    try:
        info = json.loads(payload)
    except json.JSONDecodeError:
        return None
    if not isinstance(info, dict) or not ("url" in info or "port" in info):
        return None
    info.setdefault("url", f"http://127.0.0.1:{info['port']}")
    return info
