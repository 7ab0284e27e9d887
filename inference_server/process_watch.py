"""Is a process still running? And a thread that ends the server when its parent is gone.

Standard library only. On Windows `os.kill(pid, 0)` would terminate the process, so the
check asks the system through ctypes there.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("glimpse")


def process_alive(pid: int) -> bool:
    """True while the process `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    synchronize, wait_timeout = 0x00100000, 0x00000102
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(synchronize, False, pid)
    if not handle:
        return False
    try:
        return kernel32.WaitForSingleObject(handle, 0) == wait_timeout
    finally:
        kernel32.CloseHandle(handle)


def watch_parent(pid: int, on_gone, interval_s: float = 0.5) -> threading.Thread:
    """Call `on_gone()` once, from a daemon thread, when the process `pid` has ended."""
    stop = threading.Event()

    def watch():
        while not stop.wait(interval_s):
            if not process_alive(pid):
                log.warning("the parent process %d has ended; shutting down", pid)
                on_gone()
                return

    thread = threading.Thread(target=watch, name="glimpse-parent-watch", daemon=True)
    thread.start()
    return thread


def watch_stdin(on_closed) -> threading.Thread:
    """Call `on_closed()` when stdin reaches its end (the parent that holds the pipe is gone)."""

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        log.warning("stdin was closed; shutting down")
        on_closed()

    thread = threading.Thread(target=watch, name="glimpse-stdin-watch", daemon=True)
    thread.start()
    return thread
