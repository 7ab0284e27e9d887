"""The first-run guide's decision: what the next setup step is, given what is there. No bpy.

Shown in the sidebar when the server cannot start: the buttons (operators) for Install Server,
Download Checkpoint and Try With Random Weights, each with one line saying why."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .setup_check import MISSING

INSTALL_SERVER = "glimpse3d.install_server"
DOWNLOAD_CHECKPOINT = "glimpse3d.download_checkpoint"
RANDOM_WEIGHTS = "glimpse3d.try_random_weights"


@dataclass(frozen=True)
class Step:
    operator: str
    text: str  # the button
    why: str  # one line above it
    icon: str


def next_steps(*, python: str, env_python: str, env_complete: bool, checkpoint_found: bool,
               random_weights: bool, python_unusable: bool = False) -> list:
    """The steps still to do, most important first (empty: nothing to set up).
    `env_python`: the interpreter Install Server makes; `env_complete`: it finished;
    `python_unusable`: Check Setup found the chosen Python lacking (see `python_lacking`)."""
    steps = []
    ours = bool(python) and Path(python) == Path(env_python)
    if not python:
        steps.append(Step(INSTALL_SERVER, "Install Server", "No server Python yet: install one (torch and the "
                          "server's packages, a few GB).", "IMPORT"))
    elif ours and not env_complete:
        steps.append(Step(INSTALL_SERVER, "Finish Installing Server", "The server environment is incomplete "
                          "(cancelled or failed): install again to finish it.", "IMPORT"))
    elif python_unusable:
        steps.append(Step(INSTALL_SERVER, "Repair Server" if ours else "Install Server", "Check Setup found the "
                          "server Python lacking: install (or repair) the server environment.", "IMPORT"))
    if not (checkpoint_found or random_weights):
        steps.append(Step(DOWNLOAD_CHECKPOINT, "Download Checkpoint", "No SyncDreamer checkpoint yet: download "
                          "it (5 GB, resumable).", "URL"))
        steps.append(Step(RANDOM_WEIGHTS, "Try With Random Weights", "Or try the pipeline now without it (the "
                          "views are noise).", "EXPERIMENTAL"))
    return steps


# Check Setup's items that Install Server fixes (the checkpoint and the output folder it does not).
NOT_FIXED_BY_INSTALL = ("checkpoint", "output folder", "server URL", "server")


def python_lacking(setup_report) -> bool:
    """Did the last Check Setup find the server Python, a package or the server code missing?"""
    return any(item.status == MISSING and item.label not in NOT_FIXED_BY_INSTALL for item in setup_report or ())


def checkpoint_found(preference: str, default_locations) -> bool:
    """The Checkpoint preference names a file, or the server will find one where it looks."""
    if preference:
        return Path(preference).expanduser().is_file()
    return any(Path(path).is_file() for path in default_locations)
