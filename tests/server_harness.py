"""The real server as a child process, started as the add-on starts it (its core.server_process),
and HTTP to it with urllib (as the add-on talks to it)."""
import base64
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from glimpse_syncdreamer_addon.core.server_process import ServerProcess as ServerChild
from glimpse_syncdreamer_addon.core.server_process import ServerStartError

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-1234"
START_TIMEOUT_S = 120
# few steps, all 16 views in one network call and no guidance pass (cfg 1) keep the tiny model fast
FAST = {"steps": 1, "batch_views": 16, "cfg_scale": 1.0}


class ServerProcess:
    """`python -m inference_server serve ...` as a child process, with its ready line parsed."""

    def __init__(self, args, env_extra=None, token=TOKEN):
        env = dict(os.environ)
        env.pop("GLIMPSE_CHECKPOINT", None)
        if token is not None:
            env["GLIMPSE_SERVER_TOKEN"] = token
        env.update(env_extra or {})
        self.token = token
        self.child = ServerChild([sys.executable, "-m", "inference_server", "serve", *args], env, cwd=REPO_ROOT,
                                 tail_lines=100_000)
        self.child.start()
        try:
            self.ready = self.child.wait_ready(START_TIMEOUT_S)
        except ServerStartError as error:
            raise AssertionError(f"the server did not report ready: {error}") from None
        self.url = self.ready["url"]

    @property
    def stderr_lines(self) -> list:
        """What the server wrote (stderr, and stdout after the ready line), line by line."""
        return self.child.output_tail().splitlines()

    @property
    def running(self) -> bool:
        return self.child.returncode is None

    def request(self, method, path, body=None, token="default", raw_body=None, headers=None, parse=True):
        """(status, JSON answer (bytes when not JSON or not `parse`), response headers)."""
        token = self.token if token == "default" else token
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, content, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, content, answer_headers = error.code, error.read(), error.headers
        if parse and answer_headers.get("Content-Type", "").startswith("application/json"):
            content = json.loads(content)
        return status, content, answer_headers

    def raw(self, data: bytes, timeout=30) -> bytes:
        """Send `data` as it is on a new connection; everything the server answers until it closes."""
        answer = b""
        with socket.create_connection(("127.0.0.1", self.ready["port"]), timeout=timeout) as connection:
            connection.sendall(data)
            while chunk := connection.recv(65536):
                answer += chunk
        return answer

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory so far (VmHWM), in MiB."""
        status = Path(f"/proc/{self.child.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) / 1024

    def json(self, method, path, body=None, expect=200):
        status, content, _ = self.request(method, path, body)
        assert status == expect, f"{method} {path}: {status} {content}"
        return content

    def submit(self, image_bytes, params=None, filename="cat.png", expect=202):
        body = {"image_b64": base64.b64encode(image_bytes).decode(), "filename": filename,
                "params": {**FAST, **(params or {})}}
        return self.json("POST", "/v1/jobs", body, expect=expect)

    def wait_for(self, job_id, states=("done", "failed", "cancelled"), timeout=180, condition=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.json("GET", f"/v1/jobs/{job_id}")
            if job["state"] in states and (condition is None or condition(job)):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not reach {states}: {job}")

    def fetch(self, job_id, sample, name) -> bytes:
        status, content, _ = self.request("GET", f"/v1/jobs/{job_id}/files/{sample}/{name}", parse=False)
        assert status == 200, (name, content)
        return content

    def wait_exit(self, timeout=60):
        """The exit status, once the server has ended by itself."""
        assert self.child.wait_exit(timeout), f"the server did not exit within {timeout} s"
        return self.child.returncode

    def kill(self):
        if self.running:
            os.kill(self.child.pid, signal.SIGKILL)
            self.child.wait_exit(10)
