"""The one setup task that runs at a time (Install Server or Download Checkpoint): its progress
as the preferences and the sidebar show it, its end, and its Cancel. No bpy.

The work runs on a worker thread in the UI (or on the caller's thread in background mode) and
only writes `progress`; the main thread reads it to draw, and takes the finished outcome once
with `take_finished()` to apply it (set Server Python, Checkpoint...)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .streamed_process import Cancelled

IDLE, RUNNING, DONE, FAILED, CANCELLED = "idle", "running", "done", "failed", "cancelled"
INSTALL, DOWNLOAD = "install", "download"


@dataclass
class Progress:
    phase: str = ""  # what is happening, e.g. "Installing torch"
    package: str = ""  # the package or file it is busy with
    percent: float = 0.0  # of the whole task
    message: str = ""

    @property
    def text(self) -> str:
        detail = f" {self.package}" if self.package else ""
        return f"{self.phase}{detail}: {self.percent:.0f}%"


@dataclass
class Outcome:
    kind: str  # INSTALL or DOWNLOAD
    state: str  # DONE, FAILED or CANCELLED
    result: object = None  # what the work returned (DONE)
    error: Exception | None = None  # what it raised (FAILED)


@dataclass
class SetupTask:
    kind: str = ""
    state: str = IDLE
    progress: Progress = field(default_factory=Progress)
    error: str = ""  # the last failure's message, shown until the next task starts
    offer_cpu: bool = False  # the last failure can be fixed by the CPU build
    _cancel: threading.Event = field(default_factory=threading.Event)
    _finished: Outcome | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def start(self, kind: str, work, *, wait: bool = False) -> Outcome | None:
        """Run `work(cancel_event, on_progress)`; with `wait` here (returns the Outcome, which is
        also taken), else on a worker thread. Raises RuntimeError when a task already runs."""
        with self._lock:
            if self.state == RUNNING:
                raise RuntimeError(f"A setup task ({self.kind}) is already running; wait for it or cancel it.")
            self.kind, self.state, self.error, self.offer_cpu = kind, RUNNING, "", False
            self.progress, self._cancel, self._finished = Progress(message="Starting"), threading.Event(), None
        if wait:
            self._run(work)
            return self.take_finished()
        threading.Thread(target=self._run, args=(work,), name=f"glimpse-{kind}", daemon=True).start()
        return None

    def cancel(self) -> None:
        self._cancel.set()

    def take_finished(self) -> Outcome | None:
        """The outcome of a task that ended since the last call (once), else None."""
        with self._lock:
            outcome, self._finished = self._finished, None
            return outcome

    def _run(self, work) -> None:
        def on_progress(progress: Progress) -> None:
            self.progress = progress

        try:
            outcome = Outcome(self.kind, DONE, result=work(self._cancel, on_progress))
        except Cancelled:
            outcome = Outcome(self.kind, CANCELLED)
        except Exception as exc:  # the message is for the user; a bug must still end the task
            outcome = Outcome(self.kind, FAILED, error=exc)
        with self._lock:
            self.state = outcome.state
            if outcome.state == FAILED:
                self.error = str(outcome.error) or repr(outcome.error)
                self.offer_cpu = bool(getattr(outcome.error, "offer_cpu", False))
            elif outcome.state == CANCELLED:
                self.progress = Progress(self.progress.phase, "", self.progress.percent, "Cancelled")
            self._finished = outcome
