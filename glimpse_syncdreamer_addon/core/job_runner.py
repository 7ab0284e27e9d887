"""The worker side of a generation: a thread that submits one job, follows it, and reports
through a `queue.Queue` of `Event`s. It only talks HTTP; Blender data is touched by whoever
drains the queue on the main thread (`drain_events`).
"""
from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass

from .client import ServerError
from .set_download import download_sets

# Event kinds (jobs and the server share one queue).
JOB_SUBMITTED = "job_submitted"
JOB_PROGRESS = "job_progress"
JOB_DONE = "job_done"
JOB_FAILED = "job_failed"
JOB_CANCELLED = "job_cancelled"
SERVER_READY = "server_ready"
SERVER_FAILED = "server_failed"
MODEL_UNLOADED = "model_unloaded"
NOTICE = "notice"  # good news for the panel
PROBLEM = "problem"  # something failed that leaves the server as it was
SETUP_REPORT = "setup_report"  # tag: the CheckItems of a finished setup check
JOB_END_KINDS = (JOB_DONE, JOB_FAILED, JOB_CANCELLED)

# A busy server may miss a status poll now and then; give up after this many in a row.
MAX_POLL_TIMEOUTS = 5


@dataclass(frozen=True)
class Event:
    kind: str
    job: dict | None = None
    message: str = ""
    folders: tuple = ()
    tag: object = None  # whatever the submitter attached (e.g. import options)
    serial: int = 0  # which JobRunner sent it: events of a runner given up on are ignored
    code: str = ""  # the server's error code of a failure ("" when none), to classify it


def drain_events(events: queue.Queue, handle, max_events: int | None = None) -> int:
    """Hand every waiting event to `handle(event)` on the calling thread; return how many."""
    count = 0
    while max_events is None or count < max_events:
        try:
            event = events.get_nowait()
        except queue.Empty:
            break
        handle(event)
        count += 1
    return count


def job_error_message(job: dict) -> str:
    error = job.get("error") or {}
    return error.get("message") or job.get("message") or "The job failed without a message; see the server log."


class JobRunner:
    """Submits `request` to `client` and follows it to the end, on its own thread.

    `download_to`: None when the server writes into a folder of this machine (local server);
    a folder to copy the sets into when the server is remote.
    """

    def __init__(self, client, request, events: queue.Queue, *, download_to=None,
                 poll_interval_s: float = 0.5, tag=None, serial: int = 0):
        self.client = client
        self.request = request
        self.events = events
        self.download_to = download_to
        self.poll_interval_s = poll_interval_s
        self.tag = tag
        self.serial = serial
        self.job_id: str | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="glimpse-job", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the server to cancel; the runner then reports JOB_CANCELLED (or DONE if too late)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _put(self, kind: str, **fields) -> None:
        self.events.put(Event(kind, tag=self.tag, serial=self.serial, **fields))

    def run(self) -> None:
        """The thread body; never raises: every ending is one JOB_* end event."""
        try:
            self._follow()
        except ServerError as exc:
            self._put(JOB_FAILED, message=exc.message, code=exc.code)
        except Exception as exc:  # report it rather than die silently in a thread
            self._put(JOB_FAILED, message=f"Unexpected error while following the job: {exc!r}")

    def _follow(self) -> None:
        if self._cancel.is_set():
            self._put(JOB_CANCELLED, message="Cancelled before it was sent.")
            return
        req = self.request
        job = self.client.create_job(req.image_bytes, req.filename, req.params)
        self.job_id = job["id"]
        self._put(JOB_SUBMITTED, job=job)
        cancel_sent, timeouts, last = False, 0, None
        while True:
            if self._cancel.is_set() and not cancel_sent:
                cancel_sent = True
                try:
                    self.client.cancel_job(self.job_id)
                except ServerError:
                    pass  # it may have just ended; the next poll tells
            try:
                job = self.client.get_job(self.job_id)
                timeouts = 0
            except ServerError as exc:
                timeouts += 1
                if exc.code != "timeout" or timeouts >= MAX_POLL_TIMEOUTS:
                    raise
                continue
            if job != last:
                self._put(JOB_PROGRESS, job=job)
                last = job
            state = job.get("state")
            if state == "done":
                self._put(JOB_DONE, job=job, folders=tuple(self._folders(job)))
                return
            if state == "failed":
                self._put(JOB_FAILED, job=job, message=job_error_message(job),
                          code=(job.get("error") or {}).get("code") or "")
                return
            if state == "cancelled":
                self._put(JOB_CANCELLED, job=job, message="Generation cancelled.")
                return
            self._cancel.wait(self.poll_interval_s)  # wakes at once when cancel is pressed

    def _folders(self, job: dict) -> list:
        if self.download_to:
            return download_sets(self.client, job, self.download_to)
        folders = [str(out["folder"]) for out in sorted(job.get("outputs") or [], key=lambda o: o["sample"])]
        missing = [f for f in folders if not os.path.isdir(f)]
        if not folders or missing:
            raise ServerError(
                f"The server reported the job done but its output folder {missing or '(none)'} is not on "
                "this machine. For a server on another machine use Server Mode 'Remote' in the add-on "
                "preferences so the files are downloaded.", code="bad_answer")
        return folders
