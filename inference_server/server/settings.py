"""How a server behaves: one settings model for every way a server starts.

The `serve` flags (cli/serve.py), `create_app` and the RayService builder (cluster/rayservice.py)
all build a `ServerSettings`; a field not given comes from the environment variable
GLIMPSE_<FIELD> (GLIMPSE_OUTPUT_ROOT, GLIMPSE_MAX_QUEUE, ...), else from the default here.
"""
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .. import protocol
from ..errors import InputError
from ..generation.checkpoints import cache_dir

ENV_PREFIX = "GLIMPSE_"


def default_output_root() -> Path:
    """Where job outputs go when a job names no output_dir."""
    return cache_dir() / "outputs"


class ServerSettings(BaseSettings):
    """The server's settings; the app, its routes and the job queue read these."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    output_root: Path = Field(default_factory=default_output_root)
    idle_unload_s: float = Field(0.0, ge=0)
    max_body_mb: float = Field(protocol.DEFAULT_MAX_BODY_MB, gt=0)
    max_queue: int = Field(protocol.DEFAULT_MAX_QUEUE, ge=1)
    preview_concurrency: int = Field(protocol.DEFAULT_PREVIEW_CONCURRENCY, ge=1)
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides the server's own address; "*": any
    allowed_origins: tuple[str, ...] = ()  # browser Origins accepted; "*": any

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * protocol.MIB)

    @property
    def max_image_bytes(self) -> int:
        return protocol.max_image_bytes(self.max_body_bytes)


def settings_from(model, values: dict, spell=str):
    """`model(**values)`, its refusal as an InputError that names each wrong value as `spell` writes it."""
    try:
        return model(**values)
    except ValidationError as error:
        problems = "; ".join(f"{spell(str(entry['loc'][0])) if entry['loc'] else 'settings'}: {entry['msg']}"
                             for entry in error.errors())
        raise InputError(problems, code=protocol.ErrorCode.BAD_PARAMETER) from None
