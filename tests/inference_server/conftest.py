"""Fixtures of the server tests: the test image and servers started per test."""
import pytest

from server_harness import ServerProcess


@pytest.fixture(scope="session")
def cat_path(data_dir):
    return data_dir / "testset" / "cat.png"


@pytest.fixture(scope="session")
def cat_png(cat_path) -> bytes:
    return cat_path.read_bytes()


@pytest.fixture
def start_server(tmp_path):
    """Start servers for one test; every one still running is killed at the end."""
    started = []

    def start(*args, **kwargs):
        server = ServerProcess(["--random-weights", "--port", "0", "--output-root", str(tmp_path / "out"),
                                *args], **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
