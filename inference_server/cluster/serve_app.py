"""The Ray Serve deployments of `serve --ray`: the FastAPI app as ingress, and the model replicas.

- `ModelReplica`: one pipeline (one model) per replica, one job at a time
  (max_ongoing_requests=1); it registers its node and GPU ids with the job store, reports
  progress to it and stops when the store says the job was cancelled.
- the ingress: app.create_app (the plain server's routes, token, checks and errors) over the
  job store actor (job_store.RayJobStore) and `ClusterService`, which answers what the app asks
  of a model that lives in the replicas.
Both get num_cpus explicitly: Ray's default of one CPU per replica leaves a small node without
CPUs for the model replicas (and deadlocks them).
"""
from __future__ import annotations

import threading

from ..generation.model_info import unloaded_info
from ..server.app import create_app
from .job_store import RayJobStore, start_job_store, wait_for_store
from .models import placement, run_one

MODEL_DEPLOYMENT = "GlimpseModel"
INGRESS_DEPLOYMENT = "GlimpseIngress"
HEAD_NODE = {"node:__internal_head__": 0.001}


class ModelReplica:
    """A model replica (see `model_deployment`)."""

    def __init__(self, make_pipeline):
        from ray import serve

        self.pipeline = make_pipeline()
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.store = wait_for_store()
        info = {**placement(), "model": self.pipeline.service.info()}
        import ray

        ray.get(self.store.register_replica.remote(self.replica_id, info))

    def run(self, job_id: str, request) -> dict:
        import ray

        cancelled = threading.Event()

        def report(event):  # the store's answer: whether the job was cancelled meanwhile
            if ray.get(self.store.report.remote(job_id, event)):
                cancelled.set()

        return run_one(self.pipeline, request, progress=report, should_cancel=cancelled.is_set)

    def __del__(self):
        try:
            self.store.unregister_replica.remote(self.replica_id)
        except Exception:  # the store may be gone already at shutdown
            pass


def model_deployment(serve, make_pipeline, *, replicas=None, min_replicas=None, max_replicas=None,
                     gpus_per_replica=1.0, cpus_per_replica=1.0):
    """The bound model deployment: a fixed number of replicas, or autoscaled between min and max."""
    options = {"name": MODEL_DEPLOYMENT, "max_ongoing_requests": 1,
               "ray_actor_options": {"num_gpus": gpus_per_replica, "num_cpus": cpus_per_replica},
               "health_check_timeout_s": 120}
    if min_replicas is not None or max_replicas is not None:
        options["autoscaling_config"] = {"min_replicas": min_replicas or 0, "max_replicas": max_replicas,
                                         "target_ongoing_requests": 1, "upscale_delay_s": 1}
    else:
        options["num_replicas"] = replicas
    return serve.deployment(ModelReplica).options(**options).bind(make_pipeline)


class ClusterService:
    """What the FastAPI app asks of its service, answered for models that live in the replicas:
    a replica's model info, or (while none runs, e.g. autoscaled to zero) the unloaded model's."""

    def __init__(self, jobs, service_options: dict):
        self._jobs = jobs
        self._options = dict(service_options)
        self._info = None
        self.rembg_model = service_options.get("rembg_model")

    def info(self) -> dict:
        if self._info is None:
            self._info = self._jobs.model_info()
        if self._info is not None:
            return dict(self._info)
        # no replica runs (starting, or autoscaled to zero): the model as asked for, without
        # building a service here, where torch, the checkpoint and a GPU may all be missing
        return unloaded_info(self._options)

    def gpu_memory(self):
        return None  # per replica; see the replicas in /v1/health

    def load_model(self):
        pass  # every replica loads its model when it starts

    def unload_model(self):
        pass  # replicas keep their models while the server runs


class ClusterPipeline:
    """pipeline.Pipeline's place in the ingress: the app reads only `.service` (jobs run in replicas)."""

    def __init__(self, service: ClusterService):
        self.service = service


def ingress_deployment(serve, token: str, settings, service_options: dict, *, store_workers=None, models=None):
    """The bound ingress: the plain server's FastAPI app over the cluster's job store.

    With `models` (the bound model deployment, in the same application) the ingress starts the job
    store itself, with `store_workers` workers: for RayService, where no `serve --ray` process does.
    """

    @serve.ingress()
    class Ingress:
        def __init__(self, token, settings, service_options, store_workers, models):
            self._args = (token, settings, service_options)
            if models is not None:
                import ray

                start_job_store(ray, model_app=serve.get_replica_context().app_name,
                                model_deployment=MODEL_DEPLOYMENT, workers=store_workers,
                                max_queue=settings.max_queue, detached=True)

        def __serve_build_asgi_app__(self):
            token, settings, service_options = self._args
            jobs = RayJobStore()
            app = create_app(ClusterPipeline(ClusterService(jobs, service_options)), token, settings, jobs=jobs,
                             manage_lifecycle=False)
            _forward_shutdown(app.state.server.shutdown_requested, jobs)
            return app

    return serve.deployment(Ingress).options(
        name=INGRESS_DEPLOYMENT, num_replicas=1, max_ongoing_requests=256,
        ray_actor_options={"num_cpus": 0, "resources": HEAD_NODE}).bind(token, settings, service_options,
                                                                        store_workers, models)


def _forward_shutdown(event: threading.Event, jobs):
    """POST /v1/shutdown sets `event` in the ingress; the process that runs the server watches the store."""

    def forward():
        event.wait()
        jobs.request_shutdown()

    threading.Thread(target=forward, name="glimpse-shutdown-forward", daemon=True).start()
