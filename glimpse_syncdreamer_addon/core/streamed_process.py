"""Run a setup command (venv, pip, the server's download) as a child process whose output
lines go to a log file and a callback as they come, and which a Cancel stops. No bpy."""
from __future__ import annotations

import os
import signal
import subprocess
import threading


class Cancelled(Exception):
    """The user pressed Cancel; the child process was stopped."""


def clean_environment(base_env) -> dict:
    """Blender's PYTHONPATH/PYTHONHOME would break another interpreter; output unbuffered so
    progress arrives line by line."""
    env = {key: value for key, value in base_env.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_streamed(argv, *, on_line, cancel: threading.Event, log=None, env=None, cwd=None) -> int:
    """Run `argv` to its end, stdout and stderr merged; call `on_line(line)` for every line and
    write it to `log` (an open text file). Returns the exit code; raises Cancelled when `cancel`
    is set before or while it runs, FileNotFoundError when the program does not exist."""
    if cancel.is_set():
        raise Cancelled()
    if log is not None:
        log.write("$ " + subprocess.list2cmdline([str(a) for a in argv]) + "\n")
        log.flush()
    group = {"start_new_session": True} if os.name == "posix" else \
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    process = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, cwd=cwd, text=True, encoding="utf-8",
                               errors="replace", bufsize=1, **group)
    stopper = threading.Thread(target=_stop_on_cancel, args=(process, cancel), daemon=True)
    stopper.start()
    try:
        for line in process.stdout:
            line = line.rstrip("\r\n")
            if log is not None:
                log.write(line + "\n")
            on_line(line)
    finally:
        process.stdout.close()
        code = process.wait()
        if log is not None:
            log.flush()
    if cancel.is_set():
        if log is not None:
            log.write("(cancelled)\n")
        raise Cancelled()
    return code


def _stop_on_cancel(process: subprocess.Popen, cancel: threading.Event) -> None:
    """Stop the child's whole process group (pip starts its own children) once Cancel is set."""
    while process.poll() is None:
        if cancel.wait(0.2):
            try:
                if os.name == "posix":
                    os.killpg(process.pid, signal.SIGTERM)
                else:
                    process.send_signal(signal.CTRL_BREAK_EVENT)
                process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
            return
