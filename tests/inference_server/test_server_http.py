"""The real server process with the tiny random-weight model, over real HTTP.

One server serves the whole module (the tests run in file order: bad input first, then the
valid jobs, which shows that the server kept serving).
"""
import base64
import io
import json
import threading
import time

import pytest
from PIL import Image

from server_harness import FAST, TOKEN, ServerProcess

SET_FILES = [f"view_{i:02d}.png" for i in range(16)] + ["input.png", "grid.png", "cameras.json",
                                                        "transforms.json"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("server-out")
    # no background-removal model here: a job that needs one fails at once, with the reason
    server = ServerProcess(["--random-weights", "--port", "0", "--output-root", str(out),
                            "--max-body-mb", "2"], env_extra={"U2NET_HOME": str(out / "no-rembg")})
    server.output_root = out
    yield server
    server.kill()


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def job_body(image_bytes=None, params=None, **fields):
    body = {"filename": "cat.png", "params": {**FAST, **(params or {})}}
    if image_bytes is not None:
        body["image_b64"] = base64.b64encode(image_bytes).decode()
    body.update(fields)
    return body


def test_ready_line_and_health(server):
    assert set(server.ready) == {"port", "url", "pid", "version"}
    assert server.ready["pid"] == server.child.pid
    assert server.url == f"http://127.0.0.1:{server.ready['port']}"
    health = server.json("GET", "/v1/health")
    for key in ("version", "device", "precision", "model_loaded", "checkpoint", "random_weights",
                "gpu_memory", "queue_length", "busy"):
        assert key in health
    assert health["version"] == server.ready["version"]
    assert (health["device"], health["precision"], health["random_weights"]) == ("cpu", "float32", True)
    assert health["warning"].startswith("RANDOM WEIGHTS") and "download" in health["warning"]
    assert health["queue_length"] == 0 and health["busy"] is False


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x", ""])
def test_every_route_needs_the_token(server, token):
    for method, path in (("GET", "/v1/health"), ("GET", "/v1/jobs"), ("POST", "/v1/shutdown"),
                         ("POST", "/v1/model/unload")):
        status, answer, headers = server.request(method, path, token=token, body={})
        assert status == 401, (method, path)
        assert answer["error"]["code"] == "unauthorized" and "token" in answer["error"]["message"]
        assert headers["WWW-Authenticate"] == "Bearer"
    status, _, _ = server.request("GET", "/v1/health", token=None, headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401
    assert server.running  # the shutdown above was refused


def _bomb_png():
    return png_bytes(Image.new("1", (9000, 9000)))  # 81 megapixels in a few kilobytes


def _truncated_png(cat_png):
    return cat_png[: len(cat_png) // 2]


BAD_REQUESTS = {
    # name: (method, path, body or raw bytes, expected status, expected error code)
    "not an image": ("POST", "/v1/jobs", lambda png: job_body(b"this is text, not a picture"), 415,
                     "not_an_image"),
    "empty file": ("POST", "/v1/jobs", lambda png: job_body(b""), 400, "empty_image"),
    "truncated png": ("POST", "/v1/jobs", lambda png: job_body(_truncated_png(png)), 400, "damaged_image"),
    "decompression bomb": ("POST", "/v1/jobs", lambda png: job_body(_bomb_png()), 413, "image_too_large"),
    "tiny image": ("POST", "/v1/jobs", lambda png: job_body(png_bytes(Image.new("RGB", (8, 8)))), 400,
                   "image_too_small"),
    "bad base64": ("POST", "/v1/jobs", lambda png: job_body(image_b64="not*base64!"), 400, "bad_base64"),
    "missing image": ("POST", "/v1/jobs", lambda png: job_body(), 400, "missing_image"),
    "empty body": ("POST", "/v1/jobs", lambda png: b"", 400, "missing_image"),
    "unknown param": ("POST", "/v1/jobs", lambda png: job_body(png, {"colour": "red"}), 400,
                      "unknown_parameter"),
    "unknown field": ("POST", "/v1/jobs", lambda png: {**job_body(png), "priority": 1}, 400, "unknown_field"),
    "elevation out of range": ("POST", "/v1/jobs", lambda png: job_body(png, {"elevation": 120}), 400,
                               "bad_parameter"),
    "steps out of range": ("POST", "/v1/jobs", lambda png: job_body(png, {"steps": 0}), 400, "bad_parameter"),
    "samples out of range": ("POST", "/v1/jobs", lambda png: job_body(png, {"samples": 99}), 400,
                             "bad_parameter"),
    "crop out of range": ("POST", "/v1/jobs", lambda png: job_body(png, {"crop_size": 20}), 400,
                          "bad_parameter"),
    "steps not a number": ("POST", "/v1/jobs", lambda png: job_body(png, {"steps": "many"}), 400,
                           "bad_parameter"),
    "relative output_dir": ("POST", "/v1/jobs", lambda png: job_body(png, {"output_dir": "out/here"}), 400,
                            "bad_parameter"),
    "malformed json": ("POST", "/v1/jobs", lambda png: b'{"image_b64": "abc", ', 400, "bad_json"),
    "json not an object": ("POST", "/v1/jobs", lambda png: b"[1, 2, 3]", 400, "bad_json"),
    "body too large": ("POST", "/v1/jobs", lambda png: b"x" * (3 * 1024 * 1024), 413, "body_too_large"),
    "unknown job": ("GET", "/v1/jobs/0123456789abcdef", None, 404, "no_such_job"),
    "cancel unknown job": ("POST", "/v1/jobs/0123456789abcdef/cancel", None, 404, "no_such_job"),
    "files of unknown job": ("GET", "/v1/jobs/0123456789abcdef/files", None, 404, "no_such_job"),
    "path traversal": ("GET", "/v1/jobs/0123456789abcdef/files/0/..%2F..%2Fetc%2Fpasswd", None, 400,
                       "bad_file_name"),
    "hidden file name": ("GET", "/v1/jobs/0123456789abcdef/files/0/.bashrc", None, 400, "bad_file_name"),
    "unknown route": ("GET", "/v1/teapot", None, 404, "not_found"),
    "wrong method": ("DELETE", "/v1/jobs", None, 405, "method_not_allowed"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(server, cat_png, case):
    method, path, make_body, status, code = BAD_REQUESTS[case]
    body = make_body(cat_png) if make_body else None
    raw = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    got_status, answer, _ = server.request(method, path, raw_body=raw)
    assert got_status == status, answer
    assert answer["error"]["code"] == code
    assert len(answer["error"]["message"]) > 15
    assert server.json("GET", "/v1/health")["queue_length"] == 0  # nothing was queued


def check_view_set(folder, served, params):
    """Every file of a finished set: on disk and as served over HTTP."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(SET_FILES)
    for name in SET_FILES:
        assert served[name] == (folder / name).read_bytes(), name
    for name in SET_FILES[:17]:
        with Image.open(io.BytesIO(served[name])) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (256, 256)), name
    with Image.open(io.BytesIO(served["grid.png"])) as grid:
        assert grid.size == (1024, 1024)
    cameras = json.loads(served["cameras.json"])
    assert cameras["format"] == "glimpse3d-syncdreamer-views" and cameras["format_version"] == 1
    assert cameras["warning"].startswith("RANDOM WEIGHTS")
    assert cameras["model"]["random_weights"] is True and cameras["model"]["checkpoint"] is None
    generation = cameras["generation"]
    assert generation["seed"] == params["seed"] and generation["steps"] == params["steps"]
    assert generation["elevation_deg"] == params["elevation"] and generation["crop_size"] == 200
    assert (generation["sampler"], generation["eta"], generation["device"]) == ("ddim", 1.0, "cpu")
    assert generation["input_file"] == "cat.png" and generation["background"] == "alpha"
    assert [view["file"] for view in cameras["views"]] == SET_FILES[:16]
    view_5 = cameras["views"][5]
    assert view_5["azimuth_deg"] == pytest.approx(112.5) and view_5["elevation_deg"] == pytest.approx(30.0)
    assert view_5["K"] == [[280, 0, 128], [0, 280, 128], [0, 0, 1]]
    assert len(view_5["world_to_camera_opencv"]) == 4 and len(view_5["camera_to_world_blender"]) == 4
    transforms = json.loads(served["transforms.json"])
    assert (transforms["fl_x"], transforms["cx"], transforms["w"], transforms["h"]) == (280, 128, 256, 256)
    assert [frame["file_path"].split("/")[-1] for frame in transforms["frames"]] == SET_FILES[:16]
    assert transforms["frames"][5]["transform_matrix"] == view_5["camera_to_world_blender"]
    return cameras


def test_a_failing_job_says_why_and_the_server_goes_on(server, cat_png):
    job = server.submit(cat_png, {"background": "remove"})
    failed = server.wait_for(job["id"])
    assert failed["state"] == "failed" and failed["outputs"] == []
    assert failed["error"]["code"] == "rembg_model_missing"
    assert "u2net.onnx" in failed["error"]["message"] and failed["message"] == failed["error"]["message"]
    assert not any(job["id"] in path.name for path in server.output_root.iterdir())
    assert server.json("GET", "/v1/health")["busy"] is False


def test_a_job_goes_from_image_to_a_finished_folder(server, cat_png):
    params = {**FAST, "seed": 5, "elevation": 20.0}
    job = server.submit(cat_png, params)
    assert job["state"] == "queued" and job["params"]["seed"] == 5
    assert job["warnings"][0].startswith("RANDOM WEIGHTS")
    done = server.wait_for(job["id"])
    assert done["state"] == "done", done
    assert (done["step"], done["total_steps"], done["progress"], done["error"]) == (1, 1, 1.0, None)
    [output] = done["outputs"]
    folder = server.output_root / f"cat_{job['id']}"
    assert output == {"sample": 0, "folder": str(folder), "files": SET_FILES}
    listing = server.json("GET", f"/v1/jobs/{job['id']}/files")["files"]
    assert [(f["sample"], f["name"]) for f in listing] == [(0, name) for name in SET_FILES]
    assert all(f["size"] == (folder / f["name"]).stat().st_size for f in listing)
    served = {name: server.fetch(job["id"], 0, name) for name in SET_FILES}
    check_view_set(folder, served, params)
    _, _, headers = server.request("GET", f"/v1/jobs/{job['id']}/files/0/cameras.json")
    assert headers["Content-Type"] == "application/json"
    status, answer, _ = server.request("GET", f"/v1/jobs/{job['id']}/files/0/secret.txt")
    assert status == 404 and answer["error"]["code"] == "no_such_file"


def test_two_clients_at_once_are_served_in_order(server, cat_png):
    answers = {}

    def client(name, params):
        answers[name] = server.submit(cat_png, params)

    threads = [threading.Thread(target=client, args=("a", {"seed": 1})),
               threading.Thread(target=client, args=("b", {"seed": 2, "samples": 2}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = [job["id"] for job in server.json("GET", "/v1/jobs")["jobs"]]  # in submission order
    first, second = sorted(answers.values(), key=lambda job: listed.index(job["id"]))
    overlap = []
    while True:
        jobs = {job["id"]: job for job in server.json("GET", "/v1/jobs")["jobs"]}
        states = (jobs[first["id"]]["state"], jobs[second["id"]]["state"])
        running = [s for s in states if s not in ("queued", "done", "failed", "cancelled")]
        if len(running) > 1:
            overlap.append(states)
        if all(s in ("done", "failed", "cancelled") for s in states):
            break
        time.sleep(0.05)
    assert overlap == [], "two jobs ran at the same time"
    first, second = jobs[first["id"]], jobs[second["id"]]
    assert first["state"] == second["state"] == "done"
    assert second["started"] >= first["finished"]  # one GPU job at a time, first come first served
    two = jobs[answers["b"]["id"]]
    assert [o["sample"] for o in two["outputs"]] == [0, 1]
    folders = [o["folder"] for o in two["outputs"]]
    assert folders == [str(server.output_root / f"cat_{two['id']}" / f"sample_{k}") for k in (0, 1)]
    for k in (0, 1):
        served = {name: server.fetch(two["id"], k, name) for name in SET_FILES}
        cameras = check_view_set(server.output_root / f"cat_{two['id']}" / f"sample_{k}", served,
                                 {**FAST, "seed": 2, "elevation": 30.0})
        assert (cameras["generation"]["sample_index"], cameras["generation"]["sample_count"]) == (k, 2)
    # two different samples
    assert server.fetch(two["id"], 0, "view_03.png") != server.fetch(two["id"], 1, "view_03.png")


def test_cancel_mid_run_stops_within_a_step_and_leaves_no_folder(server, cat_png):
    job = server.submit(cat_png, {"steps": 200})
    server.wait_for(job["id"], ("sampling",), condition=lambda j: j["step"] >= 1)
    sampling = server.json("GET", f"/v1/jobs/{job['id']}")
    assert sampling["eta_s"] is not None and sampling["eta_s"] > 0
    assert sampling["message"].startswith("sampling: step")
    asked = time.monotonic()
    answer = server.json("POST", f"/v1/jobs/{job['id']}/cancel", {}, expect=202)
    assert answer["cancel_requested"] is True
    cancelled = server.wait_for(job["id"])
    waited = time.monotonic() - asked
    assert cancelled["state"] == "cancelled" and cancelled["outputs"] == []
    assert cancelled["step"] < 200
    # a step of the tiny model takes a few seconds on a busy 2-core machine; within one step
    assert waited < 30, waited
    assert not any(job["id"] in path.name for path in server.output_root.iterdir())
    assert server.json("GET", f"/v1/jobs/{job['id']}/files") == {"files": []}


def test_model_unload_and_load(server):
    assert server.json("POST", "/v1/model/unload", {})["loaded"] is False
    assert server.json("GET", "/v1/health")["model_loaded"] is False
    info = server.json("POST", "/v1/model/load", {})
    assert info["loaded"] is True and info["random_weights"] is True
    assert server.json("GET", "/v1/model") == info
