"""The JSON shapes of the HTTP protocol as pydantic models: every request and every answer.

Requests refuse unknown fields. The generation parameters are built from protocol.PARAMS
(one source for names, defaults and ranges); their values are then checked once more by
params.parse_params, the check that the command line and the Python API use too. The served
OpenAPI schema (/v1/openapi.json) and docs/protocol.md come from these models.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from .. import protocol

_REQUEST = ConfigDict(extra="forbid", strict=True)


def _param_field(spec: protocol.ParamSpec):
    """(type, Field) of one generation parameter for pydantic."""
    description = spec.hint
    if spec.kind == "flag":
        return bool, Field(spec.default, description=description)
    if spec.kind == "choice":
        return Literal[spec.choices], Field(spec.default, description=description)  # type: ignore[valid-type]
    if spec.kind == "number":
        return float, Field(spec.default, ge=spec.low, le=spec.high, allow_inf_nan=False, description=description)
    if spec.name == "crop_size":  # NO_CROP, or a size in the range
        ranged = Annotated[int, Field(ge=int(spec.low), le=int(spec.high))]
        return Union[Literal[protocol.NO_CROP], ranged], Field(spec.default, description=description)
    return int, Field(spec.default, ge=int(spec.low), le=int(spec.high), description=description)


JobParams = create_model(
    "JobParams",
    __config__=_REQUEST,
    __doc__="Generation parameters; each may be left out for its default. `output_dir` only on a "
            "server bound to this machine.",
    **{spec.name: _param_field(spec) for spec in protocol.PARAMS},
    **{spec.name: _param_field(spec) for spec in protocol.JOB_OPTIONS},
    output_dir=(Optional[str], Field(None, description="absolute folder on the server's machine where the "
                                     "job's folder is made (default: the server's --output-root)")),
)
PreviewParams = create_model(
    "PreviewParams",
    __config__=_REQUEST,
    __doc__="The parameters that shape the model's input; the others are accepted and ignored.",
    **{spec.name: _param_field(spec) for spec in protocol.PARAMS},
    **{spec.name: _param_field(spec) for spec in protocol.JOB_OPTIONS},
    output_dir=(Optional[str], Field(None, description="ignored by a preview")),
)


class JobCreate(BaseModel):
    """POST /v1/jobs: one image and its parameters."""

    model_config = _REQUEST
    image_b64: str = Field(description="the image file (PNG, JPEG, WebP, ...) in standard base64; a "
                           "data: URL prefix and line breaks are accepted")
    filename: Optional[str] = Field(None, max_length=protocol.MAX_FILENAME_CHARS,
                                    description="the file's name, recorded in cameras.json and used in the "
                                    "job folder's name (never as a path)")
    params: JobParams = Field(default_factory=JobParams)


class PreviewCreate(BaseModel):
    """POST /v1/preview: the image and the parameters of a job, to see the model's input."""

    model_config = _REQUEST
    image_b64: str = Field(description="as in POST /v1/jobs")
    params: PreviewParams = Field(default_factory=PreviewParams)


class ErrorDetail(BaseModel):
    code: str = Field(description="short machine-readable name, see protocol.ErrorCode")
    message: str = Field(description="what is wrong and what to do, for a person")


class ErrorAnswer(BaseModel):
    """Every answer that is not a success."""

    error: ErrorDetail


class JobOutput(BaseModel):
    sample: int
    folder: str = Field(description="the view-set folder on the server's machine")
    files: list[str]


class Job(BaseModel):
    """A job's record."""

    id: str
    state: Literal[protocol.JOB_STATES]  # type: ignore[valid-type]
    message: str = Field(description="the state in words")
    error: Optional[ErrorDetail] = Field(description="why the job failed (null otherwise)")
    step: int = Field(description="sampling step done")
    total_steps: int
    progress: float = Field(description="0..1 over all phases")
    eta_s: Optional[float] = Field(description="seconds left in the current phase, when known")
    created: str = Field(description="UTC, ISO 8601 with milliseconds")
    started: Optional[str]
    finished: Optional[str]
    cancel_requested: bool
    params: dict[str, Any]
    warnings: list[str]
    outputs: list[JobOutput] = Field(description="the finished sets (only once done)")


class JobList(BaseModel):
    jobs: list[Job]


class FileEntry(BaseModel):
    sample: int
    name: str
    size: Optional[int]


class FileList(BaseModel):
    files: list[FileEntry]


class ModelInfo(BaseModel):
    loaded: bool
    checkpoint: Optional[str]
    config: str
    random_weights: bool
    device: str
    precision: str
    low_memory: bool
    auto_batch_views: int
    channels_last: bool
    compile: str
    warning: Optional[str]


class Health(BaseModel):
    version: str
    device: str
    precision: str
    model_loaded: bool
    checkpoint: Optional[str]
    random_weights: bool
    warning: Optional[str]
    gpu_memory: Optional[dict[str, Any]]
    queue_length: int
    busy: bool
    idle_unload_s: float
    cluster: Optional[dict[str, Any]] = Field(None, description="served on a Ray cluster (serve --ray): the model "
                                              "replicas with their nodes and GPU ids; null otherwise")


class Message(BaseModel):
    message: str
