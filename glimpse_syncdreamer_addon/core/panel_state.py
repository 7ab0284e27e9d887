"""What the sidebar shows: the server's state (stopped, starting, ready, busy, error), the running
job's progress text, and which buttons make sense. Plain Python; the panel only draws it.
"""
from __future__ import annotations

from dataclasses import dataclass

STOPPED = "stopped"
STARTING = "starting"
READY = "ready"
BUSY = "busy"
ERROR = "error"

STATE_LABELS = {
    STOPPED: "Stopped",
    STARTING: "Starting…",
    READY: "Ready",
    BUSY: "Busy",
    ERROR: "Error",
}

# Job states of the protocol -> what the artist reads while it is not sampling.
PHASE_TEXT = {
    "queued": "Waiting in the server's queue",
    "preparing": "Preparing the image",
    "loading_model": "Loading the model",
    "decoding": "Decoding the views",
    "writing": "Writing the files",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def format_eta(seconds) -> str:
    """8 -> '8 s', 125 -> '2 min 05 s', 3720 -> '1 h 02 min'."""
    seconds = max(0, int(round(float(seconds))))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(job: dict | None, *, cancelling: bool = False) -> str:
    """One line for the progress bar, e.g. 'Step 12/50 · ETA 8 s'."""
    if job is None:
        return "Cancelling…" if cancelling else "Sending the image…"
    state = job.get("state", "")
    if cancelling and state not in ("done", "failed", "cancelled"):
        return "Cancelling…"
    if state == "sampling":
        text = f"Step {int(job.get('step') or 0)}/{int(job.get('total_steps') or 0)}"
        if job.get("eta_s") is not None:
            text += f" · ETA {format_eta(job['eta_s'])}"
        return text
    return PHASE_TEXT.get(state, job.get("message") or state.replace("_", " ").capitalize())


def progress_factor(job: dict | None) -> float:
    """0..1 for the progress bar: the server's overall progress, or the step fraction."""
    if not job:
        return 0.0
    if job.get("progress") is not None:
        return min(1.0, max(0.0, float(job["progress"])))
    total = job.get("total_steps") or 0
    return min(1.0, (job.get("step") or 0) / total) if total else 0.0


@dataclass
class PanelState:
    """The state machine behind the panel. Only the main thread calls these methods."""

    server: str = STOPPED
    error: str = ""  # the last problem, with its fix; shown until the next action
    notice: str = ""  # the last good news (e.g. what was imported)
    job: dict | None = None  # latest snapshot of the running job
    busy: bool = False  # a job was handed to the worker and has not ended
    cancelling: bool = False

    # -- server ---------------------------------------------------------------------------
    def server_starting(self) -> None:
        self.server, self.error, self.notice = STARTING, "", ""

    def server_ready(self) -> None:
        self.server = BUSY if self.busy else READY

    def server_failed(self, message: str) -> None:
        self.server, self.error = ERROR, message
        self._job_over()

    def server_stopped(self) -> None:
        self.server = STOPPED
        self._job_over()

    # -- jobs -----------------------------------------------------------------------------
    def job_started(self) -> None:
        self.busy, self.cancelling, self.job = True, False, None
        self.error, self.notice = "", ""
        if self.server == READY:
            self.server = BUSY

    def job_progress(self, job: dict) -> None:
        if self.busy:
            self.job = job

    def cancel_requested(self) -> None:
        if self.busy:
            self.cancelling = True

    def job_finished(self, notice: str = "") -> None:
        self.notice = notice
        self._job_over()

    def job_failed(self, message: str) -> None:
        self.error = message
        self._job_over()

    def job_cancelled(self, message: str = "Generation cancelled.") -> None:
        self.notice = message
        self._job_over()

    def _job_over(self) -> None:
        self.busy, self.cancelling, self.job = False, False, None
        if self.server == BUSY:
            self.server = READY

    # -- what the panel asks --------------------------------------------------------------
    @property
    def label(self) -> str:
        return STATE_LABELS[self.server]

    @property
    def can_start(self) -> bool:
        return self.server in (STOPPED, ERROR)

    @property
    def can_stop(self) -> bool:
        return self.server in (STARTING, READY, BUSY)

    @property
    def can_unload(self) -> bool:
        return self.server == READY

    @property
    def can_generate(self) -> bool:
        # In every server state: Generate starts the server on first use, or waits for it.
        return not self.busy

    @property
    def can_cancel(self) -> bool:
        return self.busy and not self.cancelling

    @property
    def progress_text(self) -> str:
        if self.busy and self.server == STARTING:
            return "Starting the server…"
        return progress_text(self.job, cancelling=self.cancelling)

    @property
    def progress_factor(self) -> float:
        return progress_factor(self.job)
