"""`serve --ray ADDRESS`: the server's HTTP protocol on Ray Serve, with N model replicas.

This process joins (or, for `--ray local`, starts) the cluster, starts the job store actor, the
model replicas and the ingress (serve_app.py), prints the same ready line as the plain server
once the routes answer, and stays until POST /v1/shutdown, SIGINT/SIGTERM, the end of
`--parent-pid` or of stdin. Then it removes what it deployed; a private cluster is stopped, a
shared one keeps running.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from .. import protocol
from ..errors import InputError, SetupError
from ..process_watch import watch_parent, watch_stdin
from ..server.run import bind, url_host
from ..version import __version__
from .connect import error_summary, gpu_total, ray_cluster
from .job_store import remove_leftover_store, start_job_store, wait_for_replicas
from .models import ModelSpec
from .serve_app import MODEL_DEPLOYMENT, ingress_deployment, model_deployment

log = logging.getLogger("glimpse")
MODEL_APP = "glimpse-models"
INGRESS_APP = "glimpse"
READY_TIMEOUT_S = 600.0  # model replicas load their models before the server reports ready


def replica_counts(args, gpus: float) -> tuple:
    """(replicas at start, most replicas): --replicas, or --min/--max-replicas, or one per GPU."""
    if args.gpus_per_replica < 0 or args.cpus_per_replica < 0:
        raise InputError("--gpus-per-replica and --cpus-per-replica must be 0 or more")
    autoscale = args.min_replicas is not None or args.max_replicas is not None
    if autoscale and args.replicas is not None:
        raise InputError("give either --replicas N (a fixed number) or --min-replicas/--max-replicas (autoscaling)")
    fit = int(gpus / args.gpus_per_replica + 1e-9) if args.gpus_per_replica > 0 else None
    if autoscale:
        low = args.min_replicas or 0
        high = args.max_replicas if args.max_replicas is not None else fit
        if not high or high < max(low, 1):
            raise InputError("--max-replicas must be at least 1 and at least --min-replicas")
        return low, high
    if fit == 0:
        raise SetupError(f"the Ray cluster has {gpus:g} GPU(s), too few for one model replica at "
                         f"{args.gpus_per_replica:g} GPU each; add GPU workers (`ray start --num-gpus N`), or on a "
                         "machine without GPUs use --ray local --ray-gpus N", code="no_gpu")
    count = args.replicas if args.replicas is not None else fit
    if count is None or count < 1 or (fit is not None and count > fit):  # more would wait for GPUs for ever
        raise InputError(f"--replicas must be 1..{fit}: the cluster's {gpus:g} GPU(s) hold {fit} replica(s) at "
                         f"{args.gpus_per_replica:g} GPU each" if fit else
                         "--replicas must be at least 1 (with --gpus-per-replica 0 there is no default)")
    return count, count


def serve_on_ray(args, token: str, settings, service_options: dict) -> int:
    if service_options.get("random_weights"):
        log.warning("--random-weights: every replica's views will be noise (for trying the pipeline)")
    probe = bind(settings.host, args.port)  # a port in use is refused now, before the cluster starts
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://{url_host(settings.host)}:{port}"
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    if args.parent_pid:
        watch_parent(args.parent_pid, stop.set)
    if args.exit_with_stdin:
        watch_stdin(stop.set)
    with ray_cluster(args.ray, gpus=args.ray_gpus, cpus=args.ray_cpus) as ray:
        from ray import serve

        start, most = replica_counts(args, gpu_total(ray))
        remove_leftover_store(ray)
        store = start_job_store(ray, model_app=MODEL_APP, model_deployment=MODEL_DEPLOYMENT, workers=most,
                                max_queue=settings.max_queue)
        try:
            serve.start(http_options={"host": settings.host, "port": port}, proxy_location="HeadOnly")
            log.info("starting %s model replica(s) on the cluster ...", start if start == most else f"{start}..{most}")
            models = model_deployment(serve, ModelSpec(service_options), replicas=start if start == most else None,
                                      min_replicas=None if start == most else start,
                                      max_replicas=None if start == most else most,
                                      gpus_per_replica=args.gpus_per_replica, cpus_per_replica=args.cpus_per_replica)
            try:
                serve.run(models, name=MODEL_APP, route_prefix=None)
            except RuntimeError:
                raise SetupError(f"the model replicas could not start: {_replica_error(serve)}",
                                 code="replicas_failed") from None
            replicas = wait_for_replicas(store, start, READY_TIMEOUT_S)
            serve.run(ingress_deployment(serve, token, settings, service_options), name=INGRESS_APP,
                      route_prefix="/")
            _wait_until_answering(url, token)
            print(protocol.format_ready_line(port, url, os.getpid(), __version__), flush=True)
            log.info("serving on %s with %d model replica(s) on GPUs %s; outputs in %s", url, len(replicas),
                     ", ".join(gpu for r in replicas for gpu in r["gpu_ids"]) or "-", settings.output_root)
            while not stop.wait(0.5):
                if ray.get(store.shutdown_requested.remote()):
                    break
            log.info("shutting down")
        finally:
            _remove(serve, ray, store)
    return 0


def _replica_error(serve) -> str:
    """The last line of what Serve says about the failed model deployment (the replica's exception)."""
    try:
        message = serve.status().applications[MODEL_APP].deployments[MODEL_DEPLOYMENT].message
    except (KeyError, AttributeError):
        message = ""
    return error_summary(message)


def _wait_until_answering(url: str, token: str, timeout_s: float = 60.0) -> None:
    request = urllib.request.Request(url + protocol.ROUTE_HEALTH, headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                json.load(answer)
                return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise SetupError(f"Ray Serve did not answer on {url} ({exc}); see the Ray logs in "
                                 "/tmp/ray/session_latest/logs", code="serve_not_answering") from None
            time.sleep(0.2)


def _remove(serve, ray, store) -> None:
    """Cancel the jobs and remove what this server deployed (other apps on the cluster stay)."""
    try:
        ray.get(store.shutdown.remote(10.0), timeout=15)
    except Exception as exc:  # the cluster may be going down already
        log.info("job store: %s", exc)
    for name in (INGRESS_APP, MODEL_APP):
        try:
            serve.delete(name)
        except Exception as exc:
            log.info("could not remove the Serve app %s: %s", name, exc)
    ray.kill(store)
    # Serve's HTTP proxy keeps its port until Serve stops: stop it unless other apps use it
    if not serve.status().applications:
        serve.shutdown()
