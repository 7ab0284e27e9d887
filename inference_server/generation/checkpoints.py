"""Where the SyncDreamer checkpoint is looked for, in order, and the message when it is nowhere.

1. the path given on the command line (`--checkpoint`) or to the API,
2. the environment variable GLIMPSE_CHECKPOINT,
3. `<repository or extension folder>/ckpt/syncdreamer-pretrain.{safetensors,ckpt}`,
4. `~/.cache/glimpse3d/syncdreamer-pretrain.{safetensors,ckpt}` (where `download` puts it).
"""
import hashlib
import os
from pathlib import Path

from ..errors import SetupError

CHECKPOINT_ENV = "GLIMPSE_CHECKPOINT"
CHECKPOINT_STEM = "syncdreamer-pretrain"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")  # safetensors first: it loads without pickle


def project_root() -> Path:
    """The folder that holds `inference_server/`: the repository, or the unpacked extension."""
    return Path(__file__).resolve().parents[2]  # inference_server/generation/checkpoints.py


def configs_dir() -> Path:
    return project_root() / "configs"


def cache_dir() -> Path:
    return Path.home() / ".cache" / "glimpse3d"


def default_download_path() -> Path:
    return cache_dir() / f"{CHECKPOINT_STEM}.ckpt"


def default_locations() -> list:
    """The places searched when no path was given, in order."""
    folders = (project_root() / "ckpt", cache_dir())
    return [folder / f"{CHECKPOINT_STEM}{suffix}" for folder in folders for suffix in CHECKPOINT_SUFFIXES]


def _cli_switch(name: str, value=True) -> str:
    flag = "--" + name.replace("_", "-")
    return flag if value is True else f"{flag} {value}"


def find_checkpoint(explicit=None, switch=_cli_switch) -> Path:
    """The checkpoint to load; SetupError saying where we looked and what to do if there is none.

    `switch(name, value)` spells an option as the person sets it (params.cli_switch or
    params.python_switch).
    """
    for given, source in ((explicit, switch("checkpoint", "PATH")), (os.environ.get(CHECKPOINT_ENV), CHECKPOINT_ENV)):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise SetupError(f"The checkpoint given by {source} does not exist: {path}. "
                                 "Check the path, or leave it out to use the default locations.")
            return path.resolve()
    for path in default_locations():
        if path.is_file():
            return path
    raise SetupError(missing_checkpoint_message(switch))


def missing_checkpoint_message(switch=_cli_switch) -> str:
    looked = "\n".join(f"  - {path}" for path in default_locations())
    return (
        f"No SyncDreamer checkpoint found. Looked for {switch('checkpoint', 'PATH')}, the environment variable "
        f"{CHECKPOINT_ENV}, and:\n{looked}\n"
        "Get it with:  python -m inference_server download\n"
        "(or put syncdreamer-pretrain.ckpt in one of those places by hand). "
        f"To try the pipeline without it, use {switch('random_weights')} (the views are then noise)."
    )


def file_sha256(path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (a checkpoint is several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
