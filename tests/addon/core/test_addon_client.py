"""The protocol client against a fake server: the bearer token, answers, and every kind of
failure turned into a message that says what to do."""
import base64
import socket

import pytest

from glimpse_syncdreamer_addon.core.client import GlimpseClient, ServerError, normalize_url


def test_every_request_carries_the_bearer_token(fake_server):
    client = GlimpseClient(fake_server.url, fake_server.token)
    assert client.health()["version"] == "0.1.0"
    job = client.create_job(b"\x89PNG fake", "cat.png", {"steps": 2})
    assert job["id"] == "job1"
    assert all(auth == f"Bearer {fake_server.token}" for _, _, auth, _ in fake_server.requests)
    method, path, _, body = fake_server.requests[1]
    assert (method, path) == ("POST", "/v1/jobs")
    assert base64.b64decode(body["image_b64"]) == b"\x89PNG fake"
    assert body["filename"] == "cat.png" and body["params"] == {"steps": 2}


def test_wrong_token_says_where_to_put_the_right_one(fake_server):
    with pytest.raises(ServerError) as info:
        GlimpseClient(fake_server.url, "wrong").health()
    assert info.value.code == "unauthorized" and info.value.status == 401
    assert "token" in info.value.message and "preferences" in info.value.message


def test_protocol_error_body_becomes_the_message(fake_server):
    with pytest.raises(ServerError) as info:
        GlimpseClient(fake_server.url, fake_server.token).create_job(b"x", "cat.png", {"steps": 0})
    assert info.value.status == 400 and info.value.code == "bad_parameter"
    assert info.value.message == "'steps' must be between 1 and 1000, got 0"


def test_non_json_error_keeps_status_and_text(fake_server):
    with pytest.raises(ServerError) as info:
        GlimpseClient(fake_server.url, fake_server.token)._json("GET", "/v1/plain-error")
    assert info.value.status == 500
    assert "500" in info.value.message and "something broke" in info.value.message


def test_unreachable_server_says_to_start_it(monkeypatch):
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A proxy from the environment must not be used for the local server.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with pytest.raises(ServerError) as info:
        GlimpseClient(f"127.0.0.1:{port}", "any-token", timeout=2).health()
    assert info.value.code == "unreachable"
    assert f"http://127.0.0.1:{port}" in info.value.message and "Start it" in info.value.message


def test_files_stream_to_disk(fake_server, tmp_path):
    fake_server.files = {(0, "view_00.png"): b"png-bytes"}
    client = GlimpseClient(fake_server.url, fake_server.token)
    assert client.list_files("job1") == [{"sample": 0, "name": "view_00.png", "size": 9}]
    assert client.download_file("job1", 0, "view_00.png", tmp_path / "v.png", size=9) == 9
    assert (tmp_path / "v.png").read_bytes() == b"png-bytes"


def test_normalize_url():
    assert normalize_url(" 127.0.0.1:8765/ ") == "http://127.0.0.1:8765"
    assert normalize_url("https://gpu-box:9000") == "https://gpu-box:9000"
