"""`batch --ray`: the images of a batch run spread over a Ray cluster, one model per GPU.

One Ray actor per model copy (`gpus_per_worker` GPUs each, so Ray gives each its own GPU, or a
share of one); the driver keeps every actor busy with one image at a time, reads the image files
and writes the returned sets into OUT itself, so the workers need no disk in common with it.
A worker that dies (its node lost) fails only the image it held, and the run goes on with the
others; `--resume` retries such images later.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError, SetupError
from ..generation.batch import DONE, FAILED, BatchItem, ItemResult
from ..generation.pipeline import GenerationRequest
from .connect import error_summary
from .models import placement, run_one
from .transfer import write_files

WORKER_DIED = ("the Ray worker generating this image died (its node was lost, or it ran out of memory); "
               "the other images went on: run the batch again with --resume to retry it")


class BatchWorker:
    """A Ray actor (see `start_workers`): one pipeline, one image at a time."""

    def __init__(self, make_pipeline):
        self.pipeline = make_pipeline()

    def placement(self) -> dict:
        return placement()

    def generate(self, image: bytes, input_name: str, params) -> dict:
        request = GenerationRequest(image=image, output=Path("set"), params=params, input_name=input_name)
        return run_one(self.pipeline, request)


def start_workers(ray, make_pipeline, *, workers: int | None = None, gpus_per_worker: float = 1.0,
                  cpus_per_worker: float = 1.0) -> list:
    """Start the actors and wait until each has loaded its model; `workers` default: as many as fit."""
    if gpus_per_worker <= 0:
        raise InputError("--gpus-per-replica must be above 0 (e.g. 1, or 0.5 for two models on one GPU)")
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    fit = int(gpus / gpus_per_worker + 1e-9)
    if fit < 1:
        raise SetupError(f"the Ray cluster has {gpus:g} GPU(s), too few for one model at {gpus_per_worker:g} "
                         "GPU each; add GPU workers (`ray start --num-gpus N`) or, on a machine without GPUs, "
                         "use --ray local --ray-gpus N", code="no_gpu")
    count = fit if workers is None else int(workers)
    if not 1 <= count <= fit:  # more would wait for GPUs for ever
        raise InputError(f"--replicas must be 1..{fit}: the cluster's {gpus:g} GPU(s) hold {fit} model(s) at "
                         f"{gpus_per_worker:g} GPU each")
    actor = ray.remote(BatchWorker).options(num_gpus=gpus_per_worker, num_cpus=cpus_per_worker, max_restarts=0)
    handles = [actor.remote(make_pipeline) for _ in range(count)]
    try:
        ray.get([handle.placement.remote() for handle in handles])
    except ray.exceptions.RayActorError as exc:
        raise SetupError(f"the model workers could not start: {error_summary(str(exc))}",
                         code="worker_start_failed") from None
    return handles


def ray_executor(ray, start, *, resume: bool):
    """An executor for batch.run_batch: each image to the next free actor, results as they come.

    `start()` starts the actors (start_workers); it is called only when there is an image to
    generate, so a resumed run with nothing left loads no model.
    """

    def execute(items):
        waiting = list(items)[::-1]  # popped from the end: the order given
        if not waiting:
            return
        running = {}  # object ref -> (item, actor)
        idle = list(start())
        while waiting or running:
            while idle and waiting:
                item = waiting.pop()
                try:
                    image = Path(item.source).read_bytes()
                except OSError as exc:
                    yield ItemResult(item, FAILED, error=f"cannot read {item.source} ({exc.strerror or exc})")
                    continue
                actor = idle.pop()
                running[actor.generate.remote(image, item.source.name, item.params)] = (item, actor)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            item, actor = running.pop(ready[0])
            try:
                answer = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                yield ItemResult(item, FAILED, error=WORKER_DIED)
                if not idle and not running:  # that was the last worker
                    for item in reversed(waiting):
                        yield ItemResult(item, FAILED, error="no Ray worker is left to generate it; run the batch "
                                         "again with --resume")
                    return
                continue
            idle.append(actor)
            yield _result(item, answer, resume)

    return execute


def _result(item: BatchItem, answer: dict, resume: bool) -> ItemResult:
    if "error" in answer:
        return ItemResult(item, FAILED, error=answer["error"]["message"], seconds=answer["seconds"],
                          input_error=answer["input_error"])
    try:
        write_files(answer["files"], item.output, overwrite=resume)
    except (InputError, OSError) as exc:
        return ItemResult(item, FAILED, error=getattr(exc, "message", None) or str(exc), seconds=answer["seconds"])
    return ItemResult(item, DONE, seconds=answer["seconds"])
