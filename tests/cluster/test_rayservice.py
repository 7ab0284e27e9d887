"""The RayService application (cluster/rayservice.py) deployed with `serve run`, as KubeRay does."""
import base64
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ray_harness import REPO_ROOT

from inference_server import protocol

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
TOKEN = "rayservice-test-token"
CONFIG = """
proxy_location: HeadOnly
http_options: {{host: 127.0.0.1, port: {port}}}
applications:
  - name: glimpse
    route_prefix: /
    import_path: inference_server.cluster.rayservice:build
    runtime_env: {{env_vars: {{GLIMPSE_SERVER_TOKEN: {token}}}}}
    args: {{replicas: 2, random_weights: true, output_root: {out}}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url, method="GET", body=None, token=TOKEN):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:  # while Serve starts the app its proxy answers in plain text
        content = error.read()
        return error.code, json.loads(content) if content.startswith(b"{") else content


def test_serve_run_deploys_the_server_with_its_replicas(cluster, cat_png, tmp_path):
    port = free_port()
    config = tmp_path / "glimpse-serve.yaml"
    config.write_text(CONFIG.format(port=port, token=TOKEN, out=tmp_path / "out"))
    serve_cli = Path(sys.executable).with_name("serve")
    process = subprocess.Popen([str(serve_cli), "run", str(config), "--address", cluster.address], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                status, health = call(url + protocol.ROUTE_HEALTH)
                if status == 200 and health["cluster"]["replica_count"] == 2:
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the application did not come up"
            time.sleep(1)
        assert call(url + protocol.ROUTE_HEALTH, token="wrong")[0] == 401

        status, job = call(url + protocol.ROUTE_JOBS, "POST", {"image_b64": base64.b64encode(cat_png).decode(),
                                                              "params": {"steps": 1, "cfg_scale": 1.0}})
        assert status == 202
        while job["state"] not in protocol.FINAL_STATES:
            time.sleep(0.5)
            job = call(f"{url}{protocol.ROUTE_JOBS}/{job['id']}")[1]
        assert job["state"] == protocol.DONE, job
        assert (Path(job["outputs"][0]["folder"]) / protocol.CAMERAS_FILE).is_file()
    finally:
        process.send_signal(signal.SIGINT)  # `serve run` removes the application and stops Serve
        process.wait(120)
