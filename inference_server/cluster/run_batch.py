"""`batch --ray ADDRESS`: join (or start) the cluster, start one model per GPU, run the batch."""
from __future__ import annotations

from ..generation.batch import run_batch
from .batch_ray import ray_executor, start_workers
from .connect import ray_cluster
from .models import ModelSpec


def run_batch_on_ray(args, items, service_options: dict, make_pipeline=None):
    """batch.run_batch over Ray workers; `make_pipeline` (default: the model of `service_options`)."""
    with ray_cluster(args.ray, gpus=args.ray_gpus, cpus=args.ray_cpus) as ray:
        def start():
            return start_workers(ray, make_pipeline or ModelSpec(service_options), workers=args.replicas,
                                 gpus_per_worker=args.gpus_per_replica, cpus_per_worker=args.cpus_per_replica)

        execute = ray_executor(ray, start, resume=args.resume)
        return run_batch(items, args.output, execute, resume=args.resume, show_progress=not args.quiet)
