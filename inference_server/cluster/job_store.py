"""The jobs of a Ray-served server: one store for every ingress replica and model replica.

`JobStoreActor` is a Ray actor (one per server, on the head node) around the server's own
`jobs.JobManager` (same queue, states, limits and cancel), with one worker thread per model
replica: each worker hands its job to the model deployment (one job per replica at a time),
and writes the files that come back under the output root, where the ingress serves them.
Model replicas report progress with `report`, whose answer tells them to stop after a cancel.
`RayJobStore` is the `jobs.JobStore` that the FastAPI app in the ingress uses: it forwards to
the actor.
"""
from __future__ import annotations

import threading
import time

from ..errors import SetupError
from ..generation.pipeline import set_folders
from ..generation.progress import GenerationCancelled
from ..server.jobs import JobManager, JobOutput, JobStore
from ..view_set.reading import set_files  # the file list the plain server gives
from .transfer import write_files

STORE_NAME = "glimpse-jobs"
NAMESPACE = "glimpse"  # the store and the replicas find each other by name in it
REPLICA_LOST = ("the model replica running this job was lost (its node or process died) and the job was "
                "stopped; the other jobs go on. Submit it again")


class JobFailed(Exception):
    """A job that failed on a model replica: its error code and message, as the replica said."""

    def __init__(self, error: dict):
        super().__init__(error["message"])
        self.code = error["code"]


class JobStoreActor:
    """The store (run as a threaded Ray actor; see `start_job_store`)."""

    def __init__(self, model_app: str, model_deployment: str, workers: int, max_queue: int):
        self._model = (model_deployment, model_app)
        self._handle = None
        self._contexts = {}  # job id -> JobContext of the running job
        self._replicas = {}  # replica id -> its placement and model info
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self.manager = JobManager(self._run, workers=workers, max_queue=max_queue)
        self.manager.start()

    # --- the JobStore methods, for RayJobStore ---------------------------------------------
    def submit(self, payload, params, job_id=None, total_steps=0, warnings=()):
        return self.manager.submit(payload, params, job_id=job_id, total_steps=total_steps, warnings=warnings)

    def get(self, job_id):
        return self.manager.get(job_id)

    def list(self):
        return self.manager.list()

    def cancel(self, job_id):
        return self.manager.cancel(job_id)

    def outputs(self, job_id):
        return self.manager.outputs(job_id)

    def queue_state(self) -> tuple:
        return self.manager.queue_length, self.manager.busy

    def shutdown(self, timeout=30.0):
        return self.manager.shutdown(timeout)

    # --- from model replicas --------------------------------------------------------------
    def report(self, job_id, event) -> bool:
        """Record a replica's progress on `job_id`; True means: stop, it was cancelled."""
        context = self._contexts.get(job_id)
        return True if context is None else context.report(event)

    def register_replica(self, replica_id: str, info: dict):
        with self._lock:
            self._replicas[replica_id] = info

    def unregister_replica(self, replica_id: str):
        with self._lock:
            self._replicas.pop(replica_id, None)

    def replicas(self) -> list:
        """The model replicas on nodes that are alive: id, node, GPU ids."""
        import ray

        alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
        with self._lock:
            return [{"id": replica_id, **info} for replica_id, info in sorted(self._replicas.items())
                    if info["node_id"] in alive]

    # --- shutdown asked over HTTP, for the process that runs the server -------------------
    def request_shutdown(self):
        self._shutdown.set()

    def shutdown_requested(self) -> bool:
        return self._shutdown.is_set()

    # --- a worker thread of the manager ---------------------------------------------------
    def _run(self, job, context) -> list:
        from ray import exceptions  # Ray: only in the store's actor

        request = job.payload
        self._contexts[job.id] = context
        try:
            answer = self._model_handle().run.remote(job.id, request).result(timeout_s=None)
        except exceptions.RayTaskError:
            raise  # a bug in the replica's code (run_one answers every job's own failure)
        except exceptions.RayError as exc:  # the replica's process or node died
            raise SetupError(f"{REPLICA_LOST} ({type(exc).__name__})", code="replica_lost") from None
        finally:
            self._contexts.pop(job.id, None)
        if answer.get("cancelled"):
            raise GenerationCancelled()
        if "error" in answer:
            raise JobFailed(answer["error"])
        folder = write_files(answer["files"], request.output, overwrite=request.overwrite)
        return _outputs(folder, request.params.samples)

    def _model_handle(self):
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(*self._model)
        return self._handle


def _outputs(folder, samples: int) -> list:
    return [JobOutput(sample=index, folder=path, files=set_files(path))
            for index, path in enumerate(set_folders(folder, samples))]


def start_job_store(ray, *, model_app: str, model_deployment: str, workers: int, max_queue: int,
                    detached: bool = False):
    """The store actor, pinned to the head node (the ingress serves the files it writes there).

    The one that runs already is kept (an ingress restarted by Serve finds its jobs again).
    `detached`: it outlives the process that starts it (RayService: an ingress replica).
    """
    actor = ray.remote(JobStoreActor).options(
        name=STORE_NAME, namespace=NAMESPACE, num_cpus=0, max_concurrency=workers + 64,
        resources={"node:__internal_head__": 0.001}, max_restarts=0, get_if_exists=True,
        lifetime="detached" if detached else None)
    handle = actor.remote(model_app, model_deployment, workers, max_queue)
    ray.get(handle.queue_state.remote())  # wait until it runs
    return handle


def remove_leftover_store(ray) -> None:
    """End the store of an earlier server on this cluster (a RayService app's outlives it; so does one
    whose `serve --ray` process was killed): its jobs belonged to deployments that are gone."""
    try:
        leftover = ray.get_actor(STORE_NAME, namespace=NAMESPACE)
    except ValueError:
        return
    ray.kill(leftover)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the name is free once the actor is gone
        try:
            ray.get_actor(STORE_NAME, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.2)


def job_store_handle():
    import ray

    return ray.get_actor(STORE_NAME, namespace=NAMESPACE)


def wait_for_store(timeout_s: float = 120.0):
    """The store's handle, once it runs (model replicas may start before it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return job_store_handle()
        except ValueError:  # not created yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class RayJobStore(JobStore):
    """jobs.JobStore for the app in the ingress: every call goes to the store actor."""

    def __init__(self, actor=None):
        import ray

        self._ray = ray
        self._actor = actor or job_store_handle()

    def _call(self, method, *args, **kwargs):
        try:
            return self._ray.get(getattr(self._actor, method).remote(*args, **kwargs))
        except self._ray.exceptions.RayTaskError as exc:  # the store's own exception, e.g. QueueFull -> 429
            raise exc.cause from None

    def start(self):
        pass  # the actor runs from its start

    def shutdown(self, timeout: float = 30.0) -> bool:
        return self._call("shutdown", timeout)

    def note_activity(self):
        pass  # replicas keep their models loaded: no idle timer

    def submit(self, payload, params: dict, *, job_id: str = None, total_steps: int = 0, warnings=()) -> dict:
        return self._call("submit", payload, params, job_id, total_steps, list(warnings))

    def get(self, job_id: str):
        return self._call("get", job_id)

    def list(self) -> list:
        return self._call("list")

    def cancel(self, job_id: str):
        return self._call("cancel", job_id)

    def outputs(self, job_id: str):
        return self._call("outputs", job_id)

    @property
    def queue_length(self) -> int:
        return self._call("queue_state")[0]

    @property
    def busy(self) -> bool:
        return self._call("queue_state")[1]

    def request_shutdown(self):
        self._call("request_shutdown")

    def model_info(self):
        """A running replica's model info (None while no replica runs)."""
        replicas = self._call("replicas")
        return replicas[0]["model"] if replicas else None

    def cluster(self) -> dict:
        """What GET /v1/health says about the cluster: the model replicas and their GPUs."""
        replicas = [{key: value for key, value in replica.items() if key != "model"}
                    for replica in self._call("replicas")]
        return {"replicas": replicas, "replica_count": len(replicas),
                "gpus": sorted({f"{r['node_id'][:8]}:{gpu}" for r in replicas for gpu in r["gpu_ids"]})}


def wait_for_replicas(actor, count: int, timeout_s: float = 300.0) -> list:
    """Wait until `count` model replicas have registered (their models are loaded)."""
    import ray

    deadline = time.monotonic() + timeout_s
    while True:
        replicas = ray.get(actor.replicas.remote())
        if len(replicas) >= count or time.monotonic() > deadline:
            return replicas
        time.sleep(0.2)
