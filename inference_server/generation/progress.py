"""Progress of one generation: phases, the cancel signal and an ETA from measured step times.

Torch-free, so the job engine and its tests need no model.
"""
import time
from dataclasses import dataclass

# The phases a generation goes through, in order; they are also job states (protocol.py).
from ..protocol import DECODING, LOADING_MODEL, PREPARING, SAMPLING, WRITING  # noqa: F401 (re-exported)


class GenerationCancelled(Exception):
    """The caller asked to stop; nothing of this generation was kept."""


@dataclass(frozen=True)
class ProgressEvent:
    """What a generation reports: `phase`, and `step` of `total` within that phase."""

    phase: str
    step: int = 0
    total: int = 0
    message: str = ""


class EtaClock:
    """Estimates the remaining time of a phase from the time its finished steps took.

    Uses the mean of the steps so far, except the first one, which often includes warm-up
    (kernel selection, allocator growth) and would inflate the estimate.
    """

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._phase = None
        self._marks = []  # clock time at the start and after each step of the current phase

    def update(self, phase: str, step: int, total: int):
        """Record that `step` of `total` of `phase` has finished; return the ETA in seconds or None."""
        if phase != self._phase:
            self.start(phase)  # a phase nobody announced: its first step cannot be timed
            return None
        self._marks.append(self._clock())
        durations = [b - a for a, b in zip(self._marks, self._marks[1:])]
        if len(durations) > 1:
            durations = durations[1:]
        if not durations or total <= 0:
            return None
        per_step = sum(durations) / len(durations)
        return max(0.0, per_step * (total - step))

    def start(self, phase: str):
        """Mark the start of `phase` (so that its first step is timed from here)."""
        self._phase = phase
        self._marks = [self._clock()]


class TerminalProgress:
    """Shows a generation on the terminal: a line per phase and a bar (step i/n, ETA) for sampling.

    Use it as the `on_progress` callback; it never asks to stop.
    """

    _PHASE_LINES = {PREPARING: "preparing the input", LOADING_MODEL: "loading the model",
                    WRITING: "writing the output folder"}

    def __init__(self, stream=None, enabled: bool = True):
        import sys

        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._bar = None
        self._bar_phase = None
        self._last_line = None

    def __call__(self, event: ProgressEvent) -> bool:
        if not self._enabled:
            return False
        if event.phase in (SAMPLING, DECODING) and event.total > 0:
            if self._bar_phase != event.phase:
                self.close()
                from tqdm import tqdm

                self._bar = tqdm(total=event.total, desc=event.phase, unit="step" if event.phase == SAMPLING
                                 else "view", file=self._stream, dynamic_ncols=True)
                self._bar_phase = event.phase
            self._bar.update(event.step - self._bar.n)
        else:
            line = event.message or self._PHASE_LINES.get(event.phase, event.phase)
            if line != self._last_line:
                self.close()
                print(line, file=self._stream, flush=True)
                self._last_line = line
        return False

    def close(self):
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._bar_phase = None
