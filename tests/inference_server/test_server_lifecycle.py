"""Server processes of their own: preload, idle unload, shutdown, a made-up token, SIGKILL mid-write,
leftovers removed at the next start, and no orphans: the server ends with its parent or its stdin."""
import os
import re
import socket
import subprocess
import sys
import time

from server_harness import ServerProcess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def complete_sets(root):
    """Folders a reader would take for finished view sets (hidden .partial folders do not count)."""
    return [path for path in root.rglob("cameras.json") if not any(part.startswith(".") for part in
                                                                   path.relative_to(root).parts)]


def test_preload_idle_unload_and_shutdown_during_a_job(start_server, tmp_path, cat_png):
    server = start_server("--preload", "--idle-unload", "1")
    assert server.json("GET", "/v1/health")["model_loaded"] is True  # loaded before the ready line
    deadline = time.monotonic() + 30
    while server.json("GET", "/v1/health")["model_loaded"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.json("GET", "/v1/health")["model_loaded"] is False, "the idle model was not unloaded"

    job = server.submit(cat_png, {"steps": 200})
    server.wait_for(job["id"], ("sampling",), condition=lambda j: j["step"] >= 1)
    assert server.json("GET", "/v1/health")["busy"] is True
    status, answer, _ = server.request("POST", "/v1/shutdown", {})
    assert status == 202 and "shutting down" in answer["message"]
    assert server.wait_exit(60) == 0
    assert "glimpse: shutting down" in server.stderr_lines
    assert complete_sets(tmp_path / "out") == []


def test_without_a_token_in_the_environment_the_server_makes_one(start_server):
    port = free_port()
    server = start_server("--port", str(port), token=None)
    assert server.ready["port"] == port
    printed = [re.search(r"token is: (\S+)$", line) for line in server.stderr_lines]
    [token] = [match.group(1) for match in printed if match]
    assert len(token) >= 24
    assert server.request("GET", "/v1/health", token=None)[0] == 401
    assert server.request("GET", "/v1/health", token=token)[0] == 200


def test_a_server_killed_while_writing_leaves_no_complete_folder(tmp_path, cat_png):
    """SIGKILL the moment the partial folder appears: no folder may look like a finished set."""
    root = tmp_path / "out"
    for attempt in range(3):
        server = ServerProcess(["--random-weights", "--port", "0", "--output-root", str(root)])
        try:
            job = server.submit(cat_png, {"seed": attempt})
            deadline = time.monotonic() + 300
            partial = []
            while not partial and time.monotonic() < deadline:
                partial = [p for p in root.glob(".*partial*")] if root.exists() else []
                time.sleep(0.001)
            server.kill()
        finally:
            server.kill()
        assert partial, "the job never started writing"
        final = root / f"cat_{job['id']}"
        if not final.exists():  # killed before the rename, as intended
            assert complete_sets(root) == []
            return
        # too late: the set was complete before the kill landed; then it must be whole
        assert sorted(p.name for p in final.iterdir()) and (final / "cameras.json").is_file()
        final.rename(root / f".done-{attempt}")
    raise AssertionError("never caught the server while it was writing")


def test_leftovers_of_killed_runs_are_removed_at_the_next_start(start_server, tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = root / f".cat_0123.partial-{dead.pid}-1a2b3c4d"  # its writer is gone
    (killed / "sample_0").mkdir(parents=True)
    (killed / "sample_0" / "cameras.json").write_text("{}")
    writing = root / f".cat_4567.partial-{os.getpid()}-5e6f7a8b"  # its writer still runs
    writing.mkdir()
    kept = root / "cat_89ab"
    kept.mkdir()
    server = start_server()
    assert not killed.exists() and writing.is_dir() and kept.is_dir()
    assert any("removed" in line and killed.name in line for line in server.stderr_lines)


def test_the_server_ends_soon_after_its_parent(start_server):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        server = start_server("--parent-pid", str(parent.pid))
        assert server.json("GET", "/v1/health")["busy"] is False
    finally:
        parent.kill()
        parent.wait()
    assert server.wait_exit(15) == 0  # it polls twice a second, then stops cleanly
    assert any("parent process" in line for line in server.stderr_lines)


def test_the_server_ends_when_its_stdin_pipe_closes(start_server):
    server = start_server("--exit-with-stdin")
    assert server.json("GET", "/v1/health")["busy"] is False
    server.child.close_stdin()  # what happens when the parent (Blender) dies
    assert server.wait_exit(15) == 0
