"""Jobs: their records, a bounded first-in-first-out queue and the one worker thread that runs them.

`JobStore` is what the HTTP app needs of a job store; `JobManager` is the in-process one
(a Ray actor can stand in for it on a cluster). One job runs at a time (the GPU holds one
model and one batch); the others wait in order, at most `max_queue` of them.
What a job does is up to the `runner` given to `JobManager` (server/core.py runs the pipeline,
tests a fake one), so this module knows no torch, no images and no HTTP.

A runner is `runner(job, context) -> [JobOutput, ...]`. It reports through
`context.report(ProgressEvent(...))`, which returns True once someone asked to cancel; it then
raises `GenerationCancelled` (or any exception: the job fails with that exception's message).
"""
import abc
import collections
import datetime
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import describe_failure
from ..generation.progress import EtaClock, GenerationCancelled, ProgressEvent
from ..protocol import (
    CANCELLED,
    DECODING,
    DEFAULT_MAX_QUEUE,
    DONE,
    FAILED,
    FINAL_STATES,
    LOADING_MODEL,
    PREPARING,
    QUEUED,
    RETRY_AFTER_S,
    SAMPLING,
    WRITING,
    ErrorCode,
)

log = logging.getLogger("glimpse")

# Share of the overall progress at the start of each phase; sampling dominates the run time.
_PHASE_SPAN = {
    PREPARING: (0.0, 0.02),
    LOADING_MODEL: (0.02, 0.05),
    SAMPLING: (0.05, 0.90),
    DECODING: (0.90, 0.98),
    WRITING: (0.98, 1.0),
}


class ShuttingDown(RuntimeError):
    """A job was submitted after shutdown began."""

    code = ErrorCode.SHUTTING_DOWN


class QueueFull(RuntimeError):
    """The queue holds `max_queue` jobs already; try again after `retry_after_s`."""

    code = ErrorCode.QUEUE_FULL

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


def utc_now_iso() -> str:
    """UTC time with milliseconds, e.g. 2026-11-24T10:00:00.123Z (sorts as text)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class JobOutput:
    """One finished view-set folder of a job."""

    sample: int
    folder: Path
    files: tuple

    def to_json(self) -> dict:
        return {"sample": self.sample, "folder": str(self.folder), "files": list(self.files)}


@dataclass
class Job:
    """The record of one job. Change it only through JobManager (it holds the lock)."""

    id: str
    params: dict
    payload: object  # what the runner needs (image bytes, ...); dropped once the job has run
    total_steps: int = 0
    created: str = field(default_factory=utc_now_iso)
    state: str = QUEUED
    message: str = "waiting in the queue"
    error: dict = None
    step: int = 0
    progress: float = 0.0
    eta_s: float = None
    warnings: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    started: str = None
    finished: str = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "message": self.message,
            "error": dict(self.error) if self.error else None,
            "step": self.step,
            "total_steps": self.total_steps,
            "progress": round(self.progress, 4),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "cancel_requested": self.cancel_requested.is_set(),
            "params": dict(self.params),
            "warnings": list(self.warnings),
            "outputs": [output.to_json() for output in self.outputs],
        }


class JobContext:
    """What a runner sees of the manager: progress reports and the cancel flag."""

    def __init__(self, manager: "JobManager", job: Job):
        self._manager = manager
        self._job = job
        self._eta = EtaClock()

    @property
    def cancel_requested(self) -> bool:
        return self._job.cancel_requested.is_set()

    def raise_if_cancelled(self):
        if self.cancel_requested:
            raise GenerationCancelled()

    def report(self, event: ProgressEvent) -> bool:
        """Record progress; True means: stop now (the job was cancelled)."""
        if event.phase in (SAMPLING, DECODING) and event.step > 0:
            eta = self._eta.update(event.phase, event.step, event.total)
        else:
            self._eta.start(event.phase)
            eta = None
        self._manager._record_progress(self._job, event, eta)
        return self.cancel_requested


class JobStore(abc.ABC):
    """What the HTTP app needs of a job store. Every method returns JSON-ready snapshots
    (dicts as in schemas.Job) or JobOutput lists, so a store in another process fits too."""

    @abc.abstractmethod
    def start(self): ...

    @abc.abstractmethod
    def shutdown(self, timeout: float = 30.0) -> bool: ...

    @abc.abstractmethod
    def note_activity(self): ...

    @abc.abstractmethod
    def submit(self, payload, params: dict, *, job_id: str = None, total_steps: int = 0, warnings=()) -> dict:
        """Queue a job; QueueFull when the queue is full, ShuttingDown after shutdown began."""

    @abc.abstractmethod
    def get(self, job_id: str): ...

    @abc.abstractmethod
    def list(self) -> list: ...

    @abc.abstractmethod
    def cancel(self, job_id: str): ...

    @abc.abstractmethod
    def outputs(self, job_id: str): ...

    @property
    @abc.abstractmethod
    def queue_length(self) -> int: ...

    @property
    @abc.abstractmethod
    def busy(self) -> bool: ...

    def cluster(self):
        """A store spread over a cluster describes it here (replicas, GPUs) for /v1/health."""
        return None


class JobManager(JobStore):
    """The in-process job store: a queue and `workers` worker threads (one: one job at a time)."""

    def __init__(self, runner, *, idle_seconds: float = 0.0, on_idle=None, keep_finished: int = 200,
                 max_queue: int = DEFAULT_MAX_QUEUE, workers: int = 1):
        self._runner = runner
        self._max_queue = int(max_queue)
        self._idle_seconds = float(idle_seconds or 0.0)
        self._on_idle = on_idle
        self._keep_finished = keep_finished
        self._lock = threading.Condition()
        self._jobs = collections.OrderedDict()  # id -> Job, in creation order
        self._queue = collections.deque()
        self._running = {}  # job id -> Job, the jobs the workers run now
        self._stopping = False
        self._last_active = time.monotonic()
        self._idle_done = True  # nothing to unload before the first job
        # one worker per job that may run at once: 1 for the one GPU; a cluster's store runs one per replica
        self._workers = [threading.Thread(target=self._work, name=f"glimpse-job-worker-{index}", daemon=True)
                         for index in range(max(1, int(workers)))]

    # --- control -------------------------------------------------------------------------

    def start(self):
        for worker in self._workers:
            worker.start()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Cancel what is queued and running, stop the worker; True if it stopped in time."""
        with self._lock:
            self._stopping = True
            while self._queue:
                self._finish(self._queue.popleft(), CANCELLED, "cancelled: the server is shutting down")
            for job in self._running.values():
                job.cancel_requested.set()
            self._lock.notify_all()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            if worker.is_alive():
                worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)

    def note_activity(self):
        """Restart the idle timer (e.g. after the model was loaded on request)."""
        with self._lock:
            self._last_active = time.monotonic()
            self._idle_done = False
            self._lock.notify_all()

    # --- queries and requests --------------------------------------------------------------

    def submit(self, payload, params: dict, *, job_id: str = None, total_steps: int = 0,
               warnings=()) -> dict:
        """Queue a job; `payload` is handed to the runner as `job.payload`."""
        with self._lock:
            if self._stopping:
                raise ShuttingDown("the server is shutting down and takes no new jobs")
            if len(self._queue) >= self._max_queue:
                raise QueueFull(f"{len(self._queue)} jobs are waiting already, the most this server queues "
                                f"(serve --max-queue); try again in a moment")
            job = Job(id=job_id or new_job_id(), params=dict(params), payload=payload,
                      total_steps=int(total_steps), warnings=list(warnings))
            self._jobs[job.id] = job
            self._queue.append(job)
            if len(self._queue) > 1 or len(self._running) >= len(self._workers):
                job.message = f"waiting in the queue (position {self._queue_position(job)})"
            self._prune()
            self._lock.notify_all()
            return job.to_json()

    def get(self, job_id: str):
        """The job's snapshot, or None if there is no such job."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.to_json()

    def list(self) -> list:
        with self._lock:
            return [job.to_json() for job in self._jobs.values()]

    def cancel(self, job_id: str):
        """Cancel a queued job at once or ask the running one to stop; None if no such job."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._queue.remove(job)
                self._finish(job, CANCELLED, "cancelled before it started")
            elif not job.is_final:
                job.cancel_requested.set()
                job.message = "cancelling: stops after the current step"
            return job.to_json()

    def outputs(self, job_id: str):
        """The finished outputs of a job ([] while it runs), or None if there is no such job."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else list(job.outputs)

    @property
    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._running)

    # --- worker ----------------------------------------------------------------------------

    def _work(self):
        while True:
            job = self._next_job()
            if job is None:
                return
            self._run(job)

    def _next_job(self):
        """Wait for a job; run the idle action when idle long enough. None: stop the worker."""
        with self._lock:
            while True:
                if self._stopping:
                    return None
                if self._queue:
                    job = self._queue.popleft()
                    self._running[job.id] = job
                    job.state = PREPARING
                    job.message = "preparing the input"
                    job.started = utc_now_iso()
                    for position, waiting in enumerate(self._queue, start=1):
                        waiting.message = f"waiting in the queue (position {position})"
                    return job
                wait = None
                if self._idle_seconds > 0 and not self._idle_done:
                    wait = self._last_active + self._idle_seconds - time.monotonic()
                    if wait <= 0:
                        self._idle_done = True
                        self._lock.release()
                        try:
                            self._run_idle_action()
                        finally:
                            self._lock.acquire()
                        continue
                self._lock.wait(wait)

    def _run_idle_action(self):
        if self._on_idle is not None:
            try:
                self._on_idle()
            except Exception as exc:  # an idle unload must never stop the worker
                log.error("idle action failed: %s", exc)

    def _run(self, job: Job):
        context = JobContext(self, job)
        try:
            context.raise_if_cancelled()
            outputs = self._runner(job, context)
        except GenerationCancelled:
            with self._lock:
                self._finish(job, CANCELLED, "cancelled; no output was kept")
        except Exception as exc:  # a failed job must leave the worker ready for the next
            error = describe_failure(exc)
            if error["code"] == ErrorCode.INTERNAL_ERROR:
                log.exception("job %s failed", job.id)
            else:
                log.info("job %s failed: %s", job.id, error["message"])
            with self._lock:
                job.error = error
                self._finish(job, FAILED, error["message"])
        else:
            with self._lock:
                job.outputs = list(outputs)
                job.step = job.total_steps
                self._finish(job, DONE, f"done: {len(job.outputs)} view set(s) written")

    def _finish(self, job: Job, state: str, message: str):
        """Put `job` into a final state (the lock is held)."""
        job.state = state
        job.message = message
        job.eta_s = None
        job.payload = None
        job.finished = utc_now_iso()
        if state == DONE:
            job.progress = 1.0
        if self._running.get(job.id) is job:
            del self._running[job.id]
            self._last_active = time.monotonic()
            self._idle_done = False
        self._lock.notify_all()

    def _record_progress(self, job: Job, event: ProgressEvent, eta):
        with self._lock:
            if job.is_final:
                return
            job.state = event.phase
            start, end = _PHASE_SPAN.get(event.phase, (job.progress, job.progress))
            fraction = event.step / event.total if event.total > 0 else 0.0
            job.progress = max(job.progress, start + (end - start) * min(1.0, fraction))
            if event.phase == SAMPLING:
                job.step = event.step
                job.total_steps = event.total or job.total_steps
            job.eta_s = eta
            if job.cancel_requested.is_set():
                job.message = "cancelling: stops after the current step"
            else:
                job.message = event.message or _describe(event)

    def _queue_position(self, job: Job) -> int:
        return list(self._queue).index(job) + 1

    def _prune(self):
        """Forget the oldest finished jobs beyond `keep_finished` (the lock is held)."""
        finished = [job_id for job_id, job in self._jobs.items() if job.is_final]
        for job_id in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._jobs[job_id]


def _describe(event: ProgressEvent) -> str:
    if event.phase == SAMPLING:
        return f"sampling: step {event.step} of {event.total}"
    if event.phase == DECODING:
        return f"decoding: view {event.step} of {event.total}"
    return {
        PREPARING: "preparing the input",
        LOADING_MODEL: "loading the model",
        WRITING: "writing the output folder",
    }.get(event.phase, event.phase)
