"""One model per (logical) GPU: how a Ray worker builds its pipeline and runs one image.

`make_pipeline` is a picklable callable that a worker calls once to get its pipeline; the real
one is `ModelSpec` (the service options of the command line); tools/bench_scaling.py passes a
stand-in with a fixed time per image. Everything a worker answers is plain data (bytes, text),
so no exception class has to travel between machines.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import InputError, describe_failure
from ..generation.pipeline import Pipeline
from ..generation.progress import GenerationCancelled
from .transfer import generate_files


@dataclass(frozen=True)
class ModelSpec:
    """The model a worker loads: SyncDreamerService's options (the `model` flags)."""

    options: dict = field(default_factory=dict)

    def __call__(self):
        from ..generation.service import SyncDreamerService  # torch: only where a model runs

        service = SyncDreamerService(**self.options)
        service.load_model()  # at start, so a missing checkpoint shows before any job is given out
        return Pipeline(service)


def placement() -> dict:
    """Where the calling Ray worker runs: its node and the GPU ids Ray gave it."""
    import ray

    context = ray.get_runtime_context()
    return {"node_id": context.get_node_id(), "gpu_ids": [str(gpu) for gpu in ray.get_gpu_ids()]}


def run_one(pipeline, request, progress=None, should_cancel=None) -> dict:
    """{"files", "seconds"} of one request, {"cancelled": True, ...}, or {"error": {"code", "message"},
    "input_error": whether the image or a parameter was refused, "seconds"}."""
    start = time.monotonic()
    try:
        files = generate_files(pipeline, request, progress=progress, should_cancel=should_cancel)
    except GenerationCancelled:
        return {"cancelled": True, "seconds": time.monotonic() - start}
    except Exception as exc:  # the job fails with this message; the worker stays ready for the next
        return {"error": describe_failure(exc), "input_error": isinstance(exc, InputError),
                "seconds": time.monotonic() - start}
    return {"files": files, "seconds": time.monotonic() - start}
