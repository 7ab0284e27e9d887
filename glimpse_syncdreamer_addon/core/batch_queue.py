"""The sidebar's batch queue: images waiting to be generated and imported one after the other,
each with its own state, so a failed image is marked and the next one goes on. Plain Python:
the Blender side submits `next_item()` and reports its end with `finish()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .job_request import READABLE_SUFFIXES

WAITING = "waiting"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
ENDED = (DONE, FAILED, CANCELLED)


@dataclass
class QueueItem:
    id: int
    path: str
    state: str = WAITING
    message: str = ""  # why it failed, or what was imported
    sets: tuple = ()  # names of the collections it made

    @property
    def name(self) -> str:
        return Path(self.path).name


class BatchQueue:
    def __init__(self):
        self.items: list[QueueItem] = []
        self.running = False  # Start was pressed and items are left
        self._last_id = 0

    # -- filling --------------------------------------------------------------------------
    def add(self, paths) -> int:
        """Queue image files (those already waiting are not queued twice); returns how many."""
        waiting = {item.path for item in self.items if item.state == WAITING}
        added = 0
        for path in paths:
            path = str(path)
            if path in waiting:
                continue
            self._last_id += 1
            self.items.append(QueueItem(self._last_id, path))
            waiting.add(path)
            added += 1
        return added

    def add_folder(self, folder) -> int:
        """Queue every image the server reads in `folder` (not its subfolders), by name."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder; choose a folder of images or the images themselves.")
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES)
        if not images:
            raise ValueError(f"{folder} holds no image the server reads ({', '.join(sorted(READABLE_SUFFIXES))}).")
        return self.add(images)

    def clear(self) -> None:
        """Forget the items that ended (all of them when nothing runs)."""
        keep = (WAITING, RUNNING) if self.running else (RUNNING,)
        self.items = [item for item in self.items if item.state in keep]

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        self.running = self.waiting > 0

    def next_item(self) -> QueueItem | None:
        """The next waiting item, now marked running; None when the queue is stopped or empty."""
        if not self.running or self.current is not None:
            return None
        for item in self.items:
            if item.state == WAITING:
                item.state = RUNNING
                return item
        self.running = False
        return None

    def finish(self, item_id: int, state: str, message: str = "", sets=()) -> None:
        """Record how an item ended; the queue stops when nothing is left to do."""
        item = self.get(item_id)
        if item is None or item.state != RUNNING:
            return
        item.state, item.message, item.sets = state, message, tuple(sets)
        if not self.waiting:
            self.running = False

    def cancel_all(self) -> QueueItem | None:
        """Stop: the waiting items are cancelled; returns the running one (its job must be
        cancelled by the caller, which then reports it with `finish`)."""
        for item in self.items:
            if item.state == WAITING:
                item.state, item.message = CANCELLED, "Cancelled before it started."
        self.running = False
        return self.current

    # -- what the panel shows -------------------------------------------------------------
    def get(self, item_id: int) -> QueueItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    @property
    def current(self) -> QueueItem | None:
        return next((item for item in self.items if item.state == RUNNING), None)

    @property
    def waiting(self) -> int:
        return sum(item.state == WAITING for item in self.items)

    @property
    def summary(self) -> str:
        """E.g. '2 done, 1 failed, 3 waiting'."""
        counts = [(state, sum(item.state == state for item in self.items))
                  for state in (DONE, FAILED, CANCELLED, RUNNING, WAITING)]
        return ", ".join(f"{count} {state}" for state, count in counts if count) or "empty"
