"""The local inference server as a child process: start it, read its ready line, notice when it
dies, keep the tail of its output for error messages, and stop it.

The ready line is one stdout line (protocol.format_ready_line):
    GLIMPSE_SERVER_READY {"port": 8765, "url": "http://127.0.0.1:8765", "pid": 1234, ...}
Two reader threads drain stdout and stderr so the child never blocks on a full pipe. The child
also gets stdin as a pipe: with `serve --exit-with-stdin` it ends when Blender dies.
"""
from __future__ import annotations

import collections
import subprocess
import sys
import threading

from .bundled import protocol

READY_PREFIX = protocol.READY_PREFIX
parse_ready_line = protocol.parse_ready_line
STARTING = "starting"
READY = "ready"
EXITED = "exited"


class ServerStartError(RuntimeError):
    """The child could not be started or died before it was ready; the message says why."""


class ServerProcess:
    """One child server. Create, `start()`, then poll `state` or block in `wait_ready()`."""

    def __init__(self, argv: list, env: dict, cwd=None, *, tail_lines: int = 40):
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.ready_info: dict | None = None
        self._tail = collections.deque(maxlen=tail_lines)
        self._tail_lock = threading.Lock()
        self._ready_or_exited = threading.Event()
        self._exited = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._readers: list = []

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        python = self.argv[0]
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        try:
            self._proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, text=True, encoding="utf-8", errors="replace",
                bufsize=1, stdin=subprocess.PIPE,  # stdin closes when Blender dies: a hint to exit
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, creationflags=flags)
        except FileNotFoundError:
            raise ServerStartError(
                f"The server Python '{python}' does not exist. Set 'Server Python' in the add-on "
                "preferences to a Python with torch (then press Check Setup).") from None
        except PermissionError:
            raise ServerStartError(
                f"The server Python '{python}' cannot be run (permission denied). Choose the "
                "interpreter itself (e.g. .../bin/python or python.exe) in the add-on preferences.") from None
        except OSError as exc:
            raise ServerStartError(f"Could not start the server with '{python}': {exc}. Check "
                                   "'Server Python' in the add-on preferences.") from None
        self._readers = [
            threading.Thread(target=self._read_stdout, name="glimpse-server-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="glimpse-server-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def wait_ready(self, timeout_s: float) -> dict:
        """Block until the ready line arrives; raise ServerStartError (and stop the child)
        if it exits first or takes longer than `timeout_s`."""
        self._ready_or_exited.wait(timeout_s)
        if self.ready_info is not None and not self._exited.is_set():
            return self.ready_info
        if self._exited.is_set():
            raise ServerStartError(self.failure_message())
        self.stop()
        raise ServerStartError(
            f"The server did not get ready within {timeout_s:g} s and was stopped. "
            f"Its last output:\n{self.output_tail() or '(nothing)'}\nIf it is slow to start "
            "(first torch import, antivirus scans), raise 'Start Timeout' in the add-on preferences.")

    def stop(self, grace_s: float = 10.0) -> None:
        """Terminate the child (it has `grace_s` to exit cleanly before it is killed)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self._exited.wait(2)

    def close_stdin(self) -> None:
        """Close the child's stdin, as Blender's end does: a server started with
        `--exit-with-stdin` then stops by itself."""
        if self._proc is not None and self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()

    def wait_exit(self, timeout_s: float) -> bool:
        """Wait for the child to exit by itself (after /v1/shutdown); True if it did."""
        return self._exited.wait(timeout_s)

    # -- what the panel asks --------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    @property
    def state(self) -> str:
        if self._exited.is_set() or (self._proc is not None and self._proc.poll() is not None):
            return EXITED
        return READY if self.ready_info is not None else STARTING

    def output_tail(self) -> str:
        with self._tail_lock:
            return "\n".join(self._tail)

    def failure_message(self) -> str:
        """What to tell the person after the child died."""
        for reader in self._readers:
            reader.join(2)  # let the readers collect the last lines
        when = "while running" if self.ready_info else "before it was ready"
        return (f"The server stopped {when} (exit code {self.returncode}). Its last output:\n"
                f"{self.output_tail() or '(nothing)'}\n"
                "Press Check Setup in the add-on preferences to find what is missing.")

    # -- reader threads -------------------------------------------------------------------
    def _remember(self, line: str) -> None:
        line = line.rstrip()
        if line:
            with self._tail_lock:
                self._tail.append(line)

    def _read_stdout(self) -> None:
        try:
            for line in self._proc.stdout:
                if self.ready_info is None:
                    info = parse_ready_line(line)
                    if info is not None:
                        self.ready_info = info
                        self._ready_or_exited.set()
                        continue
                self._remember(line)
        finally:
            self._proc.wait()
            self._exited.set()
            self._ready_or_exited.set()

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            self._remember(line)
