"""Server processes of their own: preload, idle unload, shutdown, a made-up token, SIGKILL mid-write."""
import re
import socket
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
