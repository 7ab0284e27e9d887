"""Fixtures for the add-on shell: a small fake of the inference server's HTTP protocol
(docs/contracts.md §3) that the client, the job runner and the session are tested against,
and a helper that runs a script in a fresh `bpy` process with its own Blender user folder."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOKEN = "test-token"
SCRIPTS_DIR = Path(__file__).parent / "blender" / "blender_scripts"
VIEW_FILES = [f"view_{i:02d}.png" for i in range(16)] + ["input.png", "grid.png", "cameras.json",
                                                          "transforms.json"]


class FakeServer:
    """The protocol's routes with scripted job states. `job_states` is the sequence of job
    snapshots that GET /v1/jobs/{id} walks through (the last one repeats)."""

    token = TOKEN

    def __init__(self):
        self.requests = []  # (method, path, Authorization header, JSON body or None)
        self.job_states = [{"state": "done"}]
        self.outputs = []  # the job's "outputs" once done
        self.files = {}  # (sample, name) -> bytes
        self.cancelled = False
        self._polls = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def job(self, **fields) -> dict:
        base = {"id": "job1", "state": "queued", "message": "", "error": None, "step": 0, "total_steps": 2,
                "progress": 0.0, "eta_s": None, "created": "2026-01-01T00:00:00Z", "params": {}, "outputs": []}
        base.update(fields)
        return base

    def next_job(self) -> dict:
        if self.cancelled:
            return self.job(state="cancelled")
        snapshot = self.job_states[min(self._polls, len(self.job_states) - 1)]
        self._polls += 1
        job = self.job(**snapshot)
        if job["state"] == "done":
            job["outputs"] = self.outputs
        return job

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body, content_type="application/json"):
                data = json.dumps(body).encode() if content_type == "application/json" else body
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append((method, self.path, self.headers.get("Authorization"), body))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error": {"code": "unauthorized", "message": "bad token"}})
                path = self.path
                if method == "GET" and path == "/v1/health":
                    return self._send(200, {"version": "0.1.0", "device": "cpu", "model_loaded": False,
                                            "random_weights": True})
                if method == "POST" and path == "/v1/jobs":
                    if body["params"].get("steps") == 0:
                        return self._send(400, {"error": {"code": "bad_parameter",
                                                          "message": "'steps' must be between 1 and 1000, got 0"}})
                    return self._send(202, fake.job())
                if method == "GET" and path == "/v1/jobs/job1":
                    return self._send(200, fake.next_job())
                if method == "POST" and path == "/v1/jobs/job1/cancel":
                    fake.cancelled = True
                    return self._send(202, fake.job(state="cancelled"))
                if method == "GET" and path == "/v1/jobs/job1/files":
                    return self._send(200, {"files": [{"sample": s, "name": n, "size": len(d)}
                                                      for (s, n), d in sorted(fake.files.items())]})
                match = re.fullmatch(r"/v1/jobs/job1/files/(\d+)/([^/]+)", path)
                if method == "GET" and match and (int(match[1]), match[2]) in fake.files:
                    return self._send(200, fake.files[int(match[1]), match[2]], "image/png")
                if method == "POST" and path == "/v1/model/unload":
                    return self._send(200, {"loaded": False})
                if path == "/v1/plain-error":
                    return self._send(500, b"something broke", "text/plain")
                return self._send(404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server():
    with FakeServer() as server:
        yield server


@pytest.fixture(scope="session")
def build_script(repo_root):
    """scripts/build_extension.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_extension", repo_root / "scripts" / "build_extension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def extension_zip(build_script, tmp_path_factory):
    """The extension zip built from the working tree, once per test session."""
    return build_script.build_extension(tmp_path_factory.mktemp("dist"))


@pytest.fixture
def run_bpy_script(tmp_path):
    """run(script_name, *args, env_extra=None, python=None): run blender_scripts/<script_name> in a
    fresh Python with bpy (this one, or `python`: another environment's, such as an LTS Blender's)
    and its own Blender user folder; return the JSON of its 'RESULT ' line (with the script's
    whole stdout under "_stdout")."""
    return lambda script_name, *args, **kwargs: _run_bpy_script(script_name, tmp_path, *args, **kwargs)


def _run_bpy_script(script_name: str, tmp_path: Path, *args, env_extra=None, timeout=600, python=None) -> dict:
    env = dict(os.environ)
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    env["XDG_DATA_HOME"] = str(tmp_path / "user_data")  # unsaved files' views go there, not to ~
    env.update(env_extra or {})
    result = subprocess.run([str(python or sys.executable), str(SCRIPTS_DIR / script_name), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, env=env, cwd=str(tmp_path))
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, (
        f"{script_name} failed (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    found = json.loads(lines[-1][len("RESULT "):])
    found["_stdout"] = result.stdout
    return found


@pytest.fixture(scope="session")
def run_bpy_script_once(tmp_path_factory):
    """run_bpy_script for session-scoped fixtures (a slow setup shared by several tests)."""
    return lambda script_name, *args, **kwargs: _run_bpy_script(script_name, tmp_path_factory.mktemp("bpy"),
                                                                *args, **kwargs)
