"""What a long model run reports to its caller, and how the caller stops it."""
from __future__ import annotations

from typing import NamedTuple


class Progress(NamedTuple):
    """One progress event: phase "sampling" after each DDIM step, "decoding" after each view."""

    phase: str
    step: int
    total: int


class Cancelled(Exception):
    """The progress callback asked the run to stop; nothing was returned."""
