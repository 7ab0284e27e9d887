"""The Ray-served server and batch runs as child processes of the tests.

The plain server's test harness (tests/server_harness.py) drives the Ray-served
one too: the protocol, the token and the ready line are the same.
"""
from pathlib import Path

import pytest

import server_harness  # tests/server_harness.py: tests/ is on the path through tests/conftest.py
from server_harness import REPO_ROOT  # noqa: F401  (for the tests)

MIB = 1024 * 1024
# small nodes: the object store holds only a few view sets in flight
NODE_ARGS = {"num_cpus": 4, "object_store_memory": 80 * MIB}
RAY_START_TIMEOUT_S = 300  # Serve, the ingress and the replicas' models start before the ready line


def start_ray_server(address: str, output_root: Path, *args) -> server_harness.ServerProcess:
    """`serve --ray ADDRESS --random-weights ...` as a child process, once it printed its ready line."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server_harness, "START_TIMEOUT_S", RAY_START_TIMEOUT_S)
        return server_harness.ServerProcess(["--ray", address, "--random-weights", "--port", "0",
                                             "--output-root", str(output_root), *args])


def stop_ray_server(server: server_harness.ServerProcess) -> int:
    """Ask the server to stop as the add-on does; its exit status."""
    try:
        server.json("POST", "/v1/shutdown", expect=202)
        return server.wait_exit(120)
    finally:
        server.kill()
