"""Joining a Ray cluster, or starting a private one for a run (`--ray local`)."""
from __future__ import annotations

import contextlib
import os
import re

from ..errors import InputError, SetupError

LOCAL = "local"
INSTALL_HINT = 'install it with: pip install "glimpse3d-syncdreamer[ray]" (or pip install -e ".[ray]" in a clone)'


def import_ray():
    """The `ray` module, or SetupError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SetupError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}", code="ray_missing") from None
    return ray


def check_options(address: str, gpus: float | None, cpus: int | None) -> None:
    """Refuse --ray-gpus/--ray-cpus where they mean nothing, before anything starts."""
    if address != LOCAL and (gpus is not None or cpus is not None):
        raise InputError("--ray-gpus and --ray-cpus describe a private cluster: use them with --ray local; "
                         "a running cluster declares its resources with `ray start --num-gpus N`")
    if gpus is not None and gpus < 0 or cpus is not None and cpus < 1:
        raise InputError("--ray-gpus must be 0 or more and --ray-cpus at least 1")


@contextlib.contextmanager
def ray_cluster(address: str, *, gpus: float | None = None, cpus: int | None = None):
    """Connected to the cluster at `address` (or a new private one for "local") while inside.

    A private cluster is stopped at the end; a cluster that was already running is left running.
    `gpus`: logical GPUs of a private cluster (default: the GPUs Ray finds); they let machines
    without GPUs, and the tests, run the cluster code (the model then runs on the CPU).
    """
    check_options(address, gpus, cpus)
    if address == LOCAL:
        # A private cluster lives on this machine alone: Ray then takes 127.0.0.1 as the node's
        # address instead of the network interface's, so its ports are not reachable from outside.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    if address == LOCAL:
        # address="local": always a new cluster, never one that `ray start` (or a test) left running
        ray.init(address="local", num_gpus=gpus, num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise SetupError(f"cannot join the Ray cluster at {address} ({exc}); start it with `ray start --head` "
                             "(docs/scaling.md), check the address and that RAY_AUTH_TOKEN matches the cluster's "
                             "token", code="ray_unreachable") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def error_summary(text: str) -> str:
    """The last line of a remote traceback as Ray passes it on: the exception and its message."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "see the Ray logs in /tmp/ray/session_latest/logs"
    return re.sub(r"^inference_server\.errors\.\w+: ", "", lines[-1])  # our errors speak for themselves


def gpu_total(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0.0))
