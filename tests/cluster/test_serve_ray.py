"""`serve --ray`: the HTTP protocol on Ray Serve with two model replicas on two logical GPUs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray_harness import start_ray_server, stop_ray_server

from inference_server import protocol

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
LONG = {"steps": 40}  # a job that is still sampling when the test cancels it


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    server = start_ray_server(cluster.address, tmp_path_factory.mktemp("ray-serve-out"), "--replicas", "2")
    yield server
    assert stop_ray_server(server) == 0


def test_two_replicas_hold_distinct_gpus(server):
    cluster = server.json("GET", "/v1/health")["cluster"]
    assert cluster["replica_count"] == 2
    gpu_ids = [replica["gpu_ids"] for replica in cluster["replicas"]]
    assert sorted(gpu_ids) == [["0"], ["1"]]
    assert len(set(cluster["gpus"])) == 2


def test_every_route_needs_the_token(server):
    for path in (protocol.ROUTE_HEALTH, protocol.ROUTE_JOBS):
        status, answer, _ = server.request("GET", path, token=None)
        assert status == 401 and answer["error"]["code"] == "unauthorized"
        status, _, _ = server.request("GET", path, token="wrong-token")
        assert status == 401


def test_two_jobs_run_at_once_a_third_waits_and_both_kinds_of_cancel(server, cat_png):
    first = server.submit(cat_png)
    second = server.submit(cat_png, LONG)
    third = server.submit(cat_png)

    # both replicas take a job; the third waits in the shared queue
    server.wait_for(second["id"], states=(protocol.SAMPLING,), condition=lambda job: job["step"] >= 1)
    states = {job["id"]: job["state"] for job in server.json("GET", "/v1/jobs")["jobs"]}
    assert states[third["id"]] == protocol.QUEUED
    assert states[first["id"]] in (*protocol.RUNNING_STATES, protocol.DONE)

    cancelled = server.json("POST", f"/v1/jobs/{third['id']}/cancel", expect=202)
    assert cancelled["state"] == protocol.CANCELLED  # a queued job is cancelled at once
    server.json("POST", f"/v1/jobs/{second['id']}/cancel", expect=202)
    stopped = server.wait_for(second["id"], timeout=300)
    assert stopped["state"] == protocol.CANCELLED and stopped["outputs"] == []
    assert stopped["step"] < LONG["steps"]

    done = server.wait_for(first["id"], timeout=300)
    assert done["state"] == protocol.DONE, done
    # the files came back from the replica to the ingress's output root and are served from there
    folder = done["outputs"][0]["folder"]
    names = [entry["name"] for entry in server.json("GET", f"/v1/jobs/{first['id']}/files")["files"]]
    assert set(protocol.SET_FILES) <= set(names)
    view = server.fetch(first["id"], 0, "view_00.png")
    assert view.startswith(b"\x89PNG") and view == (Path(folder) / "view_00.png").read_bytes()


def test_the_addon_remote_mode_generates_and_downloads_a_set(server, cat_png, tmp_path):
    # the add-on's own client and downloader, as its Remote mode uses them (bpy-free modules)
    from glimpse_syncdreamer_addon.core.client import GlimpseClient
    from glimpse_syncdreamer_addon.core.set_download import download_sets
    from glimpse_syncdreamer_addon.core.view_sets import read_view_set

    client = GlimpseClient(server.url, server.token)
    job = client.create_job(cat_png, "cat.png", {"steps": 1, "cfg_scale": 1.0, "batch_views": 16})
    job = server.wait_for(job["id"], timeout=300)
    assert job["state"] == protocol.DONE, job
    folders = download_sets(client, client.get_job(job["id"]), tmp_path / "downloads")
    view_set = read_view_set(folders[0])
    assert len(view_set.views) == 16 and view_set.warning.startswith("RANDOM WEIGHTS")


@pytest.mark.blender
def test_the_addon_in_blender_generates_and_imports_a_set_through_remote_mode(server, data_dir, tmp_path):
    # the whole Remote mode in Blender: the installed extension, its client, download and import
    repo = Path(__file__).resolve().parents[2]
    built = subprocess.run([sys.executable, str(repo / "scripts" / "build_extension.py"), "--no-validate",
                            "--out-dir", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user"),
           "XDG_DATA_HOME": str(tmp_path / "user_data")}
    script = Path(__file__).with_name("bl_remote_generate.py")
    run = subprocess.run([sys.executable, str(script), built.stdout.strip(), str(data_dir / "testset" / "cat.png"),
                          server.url, server.token], capture_output=True, text=True, timeout=600, env=env,
                         cwd=str(tmp_path))
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["generate"] == ["FINISHED"]
    assert result["cameras"] == 16 and result["planes"] >= 16
    assert {f"view_{i:02d}.png" for i in range(16)} | {"cameras.json"} <= set(result["files"])
    assert result["scene_camera_unchanged"]
