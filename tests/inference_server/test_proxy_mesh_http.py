"""The `mesh` job option over real HTTP (the tiny random-weight model): checked like every
parameter, carried to the set writer, and the set's files list what it wrote."""
import json

import pytest

from inference_server import protocol

pytestmark = pytest.mark.slow


def test_mesh_option_over_http(start_server, cat_png, tmp_path):
    server = start_server()
    status, answer, _ = server.request("POST", "/v1/jobs", {
        "image_b64": "aGVsbG8=", "params": {"mesh": True, "mesh_resolution": 8}})
    assert status == 400 and answer["error"]["code"] == "bad_parameter"
    assert "'mesh_resolution' must be between 32 and 512, got 8" in answer["error"]["message"]
    job = server.submit(cat_png, {"mesh": True, "mesh_resolution": 48})
    assert job["params"]["mesh"] is True and job["params"]["mesh_resolution"] == 48
    done = server.wait_for(job["id"])
    assert done["state"] == "done", done
    [output] = done["outputs"]
    cameras_json = json.loads(server.fetch(job["id"], 0, protocol.CAMERAS_FILE))
    entry = cameras_json["mesh"]
    assert entry["resolution"] == 48
    # random weights paint noise: the set says why it has no mesh, or lists the one it has
    if entry["file"] is None:
        assert "background" in entry["error"] and protocol.MESH_FILE not in output["files"]
    else:
        assert protocol.MESH_FILE in output["files"]
        assert server.fetch(job["id"], 0, protocol.MESH_FILE).startswith(b"ply\n")
