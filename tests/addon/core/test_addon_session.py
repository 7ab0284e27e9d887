"""The session: child-process handling (with a stand-in server package), the remote mode against
the fake HTTP server, and the worker-to-main-thread queue drained by `poll()`."""
import os
import sys
import time
from pathlib import Path

import pytest

from glimpse_syncdreamer_addon.core import job_runner as jr
from glimpse_syncdreamer_addon.core import panel_state as ps
from glimpse_syncdreamer_addon.core.job_request import JobRequest
from glimpse_syncdreamer_addon.core.job_runner import Event
from glimpse_syncdreamer_addon.core.server_process import ServerStartError, parse_ready_line
from glimpse_syncdreamer_addon.core.server_settings import (LOCAL, REMOTE, ServerSettings, child_environment,
                                                            resolve_extra_args, resolve_python, serve_argv)
from glimpse_syncdreamer_addon.core.session import Session

FAKE_ROOT = Path(__file__).parent / "fake_server_root"
REQUEST = JobRequest(b"png", "cat.png", {"steps": 2})


def _local(mode, **kwargs):
    return ServerSettings(mode=LOCAL, python=sys.executable, extra_args=(mode,), **kwargs)


def _poll_until(session, condition, timeout_s=10.0):
    events = []
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out; state {session.state}"
        events += session.poll()
        time.sleep(0.02)
    return events


def test_ready_line_parsing():
    info = parse_ready_line('GLIMPSE_SERVER_READY {"port": 8765, "pid": 1, "version": "0.1.0"}\n')
    assert info["url"] == "http://127.0.0.1:8765"
    assert parse_ready_line("GLIMPSE_SERVER_READY not json") is None
    assert parse_ready_line('log: GLIMPSE_SERVER_READY {"port": 1}') is None


def test_serve_command_line_and_environment(tmp_path):
    settings = ServerSettings(python="/py", checkpoint="~/ckpt/s.ckpt", device="cuda", precision="float16",
                              idle_unload_s=600, extra_args=("--verbose",))
    argv = serve_argv(settings)
    assert argv[:8] == ["/py", "-m", "inference_server", "serve", "--host", "127.0.0.1", "--port", "0"]
    # the server ends with Blender (this process), and when its stdin pipe closes
    assert argv[8:11] == ["--parent-pid", str(os.getpid()), "--exit-with-stdin"]
    assert argv[argv.index("--checkpoint") + 1] == str(Path("~/ckpt/s.ckpt").expanduser())
    assert ["--device", "cuda", "--precision", "float16", "--idle-unload", "600"] == argv[13:19]
    assert argv[-1] == "--verbose"
    defaults = serve_argv(ServerSettings(python="/py", checkpoint="/c.ckpt", extra_args=("--random-weights",)))
    assert "--device" not in defaults and "--checkpoint" not in defaults  # auto, random weights
    assert "--low-memory" not in argv and "--low-memory" not in defaults
    low_memory = serve_argv(ServerSettings(python="/py", device="cuda", low_memory=True, extra_args=("--verbose",)))
    assert low_memory[11:] == ["--device", "cuda", "--low-memory", "--verbose"]
    env = child_environment({"PYTHONPATH": "/blender/python", "PYTHONHOME": "/b", "HOME": "/h"}, tmp_path, "tok")
    assert env["PYTHONPATH"] == str(tmp_path) and "PYTHONHOME" not in env
    assert env["GLIMPSE_SERVER_TOKEN"] == "tok" and env["HOME"] == "/h"


def test_environment_defaults_for_scripts():
    environ = {"GLIMPSE_SERVER_PYTHON": "/env/python", "GLIMPSE_SERVER_EXTRA_ARGS": "--random-weights"}
    assert resolve_python("", environ) == "/env/python"
    assert resolve_python(" /pref/python ", environ) == "/pref/python"
    assert resolve_extra_args("--verbose", environ) == ("--verbose", "--random-weights")
    with pytest.raises(ValueError, match="quotes"):
        resolve_extra_args('--output-root "unclosed', {})


def test_local_child_gets_ready_and_stops_cleanly():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-ready"))
    assert session.state.server == ps.STARTING
    events = _poll_until(session, lambda: session.state.server == ps.READY)
    assert [e.kind for e in events] == [jr.SERVER_READY]
    health = session.client.health()  # the token made up for the child works
    assert health["argv"][:4] == ["serve", "--host", "127.0.0.1", "--port"]
    process = session.process
    session.stop_server()  # asks /v1/shutdown; the child exits by itself
    assert process.returncode == 0 and session.state.server == ps.STOPPED and session.client is None


def test_server_settings_apply_when_the_child_starts_next():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-ready", device="cpu"))
    session.wait_until_ready()
    first = session.client.health()["argv"]
    session.start_server(_local("--fake-ready", low_memory=True))  # running: nothing changes yet
    assert session.client.health()["argv"] == first and "--low-memory" not in first
    session.stop_server()
    session.start_server(_local("--fake-ready", low_memory=True))
    session.wait_until_ready()
    argv = session.client.health()["argv"]
    assert "--low-memory" in argv and "--device" not in argv
    session.stop_server()


def test_child_that_dies_at_start_shows_its_last_output():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-die"))
    events = _poll_until(session, lambda: session.state.server == ps.ERROR)
    assert events[-1].kind == jr.SERVER_FAILED
    assert "exit code 3" in session.state.error and "No module named 'torch'" in session.state.error
    assert "Check Setup" in session.state.error


def test_child_that_dies_while_running_ends_the_job():
    session = Session(root=FAKE_ROOT)
    session.submit(REQUEST, _local("--fake-die-later"))  # Generate on first use starts the server
    assert session.state.busy
    _poll_until(session, lambda: session.state.server == ps.ERROR)
    assert not session.state.busy and "CUDA out of memory" in session.state.error
    assert "while running" in session.state.error


def test_child_that_never_gets_ready_is_stopped_after_the_timeout():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-silent", ready_timeout_s=0.5))
    process = session.process
    with pytest.raises(ServerStartError, match="did not get ready within 0.5 s"):
        session.wait_until_ready()
    assert process.returncode is not None  # stopped, not left behind


def test_stop_while_starting_does_not_wait():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-silent"))
    process = session.process
    started = time.monotonic()
    session.stop_server()
    assert time.monotonic() - started < 3 and process.returncode is not None
    assert session.state.server == ps.STOPPED and session.poll() == []  # no "server died" afterwards


def test_missing_interpreter_is_an_error_with_the_fix():
    session = Session(root=FAKE_ROOT)
    with pytest.raises(ServerStartError, match="Server Python"):
        session.start_server(ServerSettings(mode=LOCAL, python=""))
    with pytest.raises(ServerStartError, match="does not exist"):
        session.start_server(ServerSettings(mode=LOCAL, python="/no/such/python"))
    assert session.state.server == ps.ERROR and "does not exist" in session.state.error


def test_shutdown_at_exit_stops_the_child():
    session = Session(root=FAKE_ROOT)
    session.start_server(_local("--fake-ready"))
    session.wait_until_ready()
    process = session.process
    session.shutdown()
    assert process.returncode is not None and session.state.server == ps.STOPPED


def test_remote_job_runs_through_poll(fake_server, tmp_path):
    fake_server.job_states = [{"state": "sampling", "step": 1}, {"state": "done"}]
    fake_server.outputs = [{"sample": 0, "folder": "/remote/out/cat_job1"}]
    fake_server.files = {(0, "view_00.png"): b"v0"}
    settings = ServerSettings(mode=REMOTE, url=fake_server.url, token=fake_server.token, output_dir=str(tmp_path))
    session = Session()
    session.submit(REQUEST, settings, tag="import-options")
    events = _poll_until(session, lambda: not session.state.busy)
    kinds = [e.kind for e in events]
    assert kinds[0] == jr.SERVER_READY and kinds[-1] == jr.JOB_DONE
    assert events[-1].tag == "import-options"
    assert session.last_folders == (str(tmp_path / "cat_job1"),)
    assert (tmp_path / "cat_job1" / "view_00.png").read_bytes() == b"v0"
    sent = fake_server.requests[1][3]
    assert "output_dir" not in sent["params"]  # a remote server gets no local paths
    session.stop_server()  # a remote server is only let go
    assert ("POST", "/v1/shutdown") not in [(m, p) for m, p, _, _ in fake_server.requests]


def test_poll_applies_simulated_events_and_drops_stale_ones():
    session = Session()
    session.state.server = ps.READY
    session.client = object()  # never used: no runner is started below
    session.events.put(Event(jr.JOB_PROGRESS, job={"state": "sampling"}, serial=5))  # no such job
    assert session.poll() == [] and not session.state.busy

    session.events.put(Event(jr.SETUP_REPORT, tag=["item"]))
    session.events.put(Event(jr.MODEL_UNLOADED, message="Model unloaded; its memory is free."))
    session.events.put(Event(jr.PROBLEM, message="The server refused: busy."))
    assert [e.kind for e in session.poll()] == [jr.SETUP_REPORT, jr.MODEL_UNLOADED, jr.PROBLEM]
    assert session.setup_report == ["item"] and not session.setup_running
    assert session.state.notice.startswith("Model unloaded") and session.state.error == "The server refused: busy."

    session.events.put(Event(jr.SERVER_FAILED, message="gone"))
    session.poll()
    assert session.state.server == ps.ERROR and session.state.error == "gone"


def test_a_second_generate_while_busy_is_refused(fake_server):
    fake_server.job_states = [{"state": "sampling", "step": 1}]
    session = Session()
    settings = ServerSettings(mode=REMOTE, url=fake_server.url, token=fake_server.token)
    session.submit(REQUEST, settings)
    with pytest.raises(RuntimeError, match="already running"):
        session.submit(REQUEST, settings)
    _poll_until(session, lambda: session.state.server == ps.BUSY and session.state.job is not None)
    session.cancel()
    _poll_until(session, lambda: not session.state.busy)
    assert session.state.notice == "Generation cancelled." and session.state.server == ps.READY
