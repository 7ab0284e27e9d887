"""How to reach the server: the settings from the preferences, and the command line and
environment of a local server child process. No bpy, so scripts and tests build them too.

Two environment variables give defaults for scripts and CI (the preferences win when set):
- GLIMPSE_SERVER_PYTHON: the Python interpreter (with torch) that runs a local server.
- GLIMPSE_SERVER_EXTRA_ARGS: extra `serve` arguments, e.g. "--random-weights" for a smoke test.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from .bundled import protocol

ENV_PYTHON = "GLIMPSE_SERVER_PYTHON"
ENV_EXTRA_ARGS = "GLIMPSE_SERVER_EXTRA_ARGS"
ENV_TOKEN = protocol.TOKEN_ENV

LOCAL = "LOCAL"
REMOTE = "REMOTE"
AUTO = "auto"  # device and precision: let the server choose

NO_PYTHON_MESSAGE = (
    "No Python interpreter is set for the server. In Edit > Preferences > Add-ons > Glimpse3D "
    "SyncDreamer, set 'Server Python' to a Python with torch (or set the GLIMPSE_SERVER_PYTHON "
    "environment variable), then press Check Setup.")
NO_URL_MESSAGE = (
    "Server Mode is 'Remote' but no Server URL is set. Enter the URL (and token) of the running "
    "server in the add-on preferences, or switch Server Mode to 'Local'.")


@dataclass(frozen=True)
class ServerSettings:
    """Everything needed to start or reach a server; built from the add-on preferences."""

    mode: str = LOCAL  # LOCAL: start a child process; REMOTE: use a server that already runs
    python: str = ""  # interpreter for LOCAL ("" = not set)
    checkpoint: str = ""
    device: str = AUTO
    precision: str = AUTO
    low_memory: bool = False  # LOCAL only: `serve --low-memory` (CLIP and VAE offloaded, automatic = 4 views)
    extra_args: tuple = ()
    url: str = ""  # REMOTE only
    token: str = ""  # REMOTE only; a local server gets a fresh random token
    # REMOTE https:// only, whom to trust instead of the system's certificate store (server_trust.py):
    ca_file: str = ""  # a PEM file with the server's CA (or its self-signed certificate)
    fingerprint: str = ""  # the SHA-256 of the server's certificate, as `serve` prints it: that one only
    idle_unload_s: float = 0.0  # the server unloads the model after this long idle (0 = never)
    ready_timeout_s: float = 300.0
    output_dir: str = ""  # where finished sets go on this machine

    @property
    def is_local(self) -> bool:
        return self.mode == LOCAL

    @property
    def uses_random_weights(self) -> bool:
        return "--random-weights" in self.extra_args


def resolve_python(preference: str, environ=os.environ) -> str:
    """The interpreter path: the preference when set, else $GLIMPSE_SERVER_PYTHON, else ""."""
    return (preference or "").strip() or environ.get(ENV_PYTHON, "").strip()


def resolve_extra_args(preference: str, environ=os.environ) -> tuple:
    """Extra `serve` arguments: those of the preference followed by $GLIMPSE_SERVER_EXTRA_ARGS."""
    try:
        return tuple(shlex.split(preference or "")) + tuple(shlex.split(environ.get(ENV_EXTRA_ARGS, "")))
    except ValueError as exc:
        raise ValueError(f"The extra server arguments cannot be parsed ({exc}); check the quotes "
                         f"in the preferences and in ${ENV_EXTRA_ARGS}.") from None


def serve_argv(settings: ServerSettings, parent_pid: int | None = None) -> list:
    """`python -m inference_server serve ...` for a local child on a free port of 127.0.0.1.

    The child ends by itself when this process (`parent_pid`, default: ours, i.e. Blender)
    ends, or when its stdin pipe closes, so a crashed Blender leaves no server holding the GPU.
    """
    parent_pid = os.getpid() if parent_pid is None else parent_pid
    argv = [settings.python, "-m", "inference_server", "serve", "--host", "127.0.0.1", "--port", "0",
            "--parent-pid", str(parent_pid), "--exit-with-stdin"]
    if settings.checkpoint and not settings.uses_random_weights:
        argv += ["--checkpoint", str(Path(settings.checkpoint).expanduser())]
    if settings.device != AUTO:
        argv += ["--device", settings.device]
    if settings.precision != AUTO:
        argv += ["--precision", settings.precision]
    if settings.low_memory:
        argv.append("--low-memory")
    if settings.idle_unload_s > 0:
        argv += ["--idle-unload", f"{settings.idle_unload_s:g}"]
    return argv + list(settings.extra_args)


def child_environment(base_env, server_root: Path, token: str) -> dict:
    """The child's environment: our token, the bundled server importable, unbuffered output.

    PYTHONPATH is replaced rather than extended: Blender's own Python paths would break a
    different interpreter.
    """
    env = {key: value for key, value in base_env.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(server_root)
    env[ENV_TOKEN] = token
    env["PYTHONUNBUFFERED"] = "1"  # the ready line must arrive at once
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env
