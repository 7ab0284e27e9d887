"""The real server under hostile and odd requests: framing, methods, JSON, parameters, images,
file routes, browser headers, the queue bound; and no traceback in its log for any of them.

One server serves the module (the tests run in file order; the queue test comes last).
"""
import base64
import io
import json
import re
import time

import pytest
from PIL import Image

from server_harness import FAST, TOKEN, ServerProcess

pytestmark = pytest.mark.slow
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    out = tmp_path_factory.mktemp("abuse-out")
    server = ServerProcess(["--random-weights", "--port", "0", "--output-root", str(out), "--max-body-mb", "2",
                            "--max-queue", "2"])
    server.output_root = out
    yield server
    server.kill()


def host(server) -> bytes:
    return f"Host: 127.0.0.1:{server.ready['port']}\r\n".encode()


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def job(image_bytes, **params):
    return {"image_b64": base64.b64encode(image_bytes).decode(), "filename": "cat.png", "params": {**FAST, **params}}


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def answers_on(answer: bytes) -> list:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


# ---- framing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000, "-1", "0x10", "1 2"])
def test_odd_content_lengths_get_400_and_a_closed_connection(server, length):
    head = b"POST /v1/jobs HTTP/1.1\r\n" + host(server) + AUTH + f"Content-Length: {length}\r\n".encode("utf-8")
    answer = server.raw(head + b"\r\n{}")
    assert status_of(answer) == 400, answer
    assert server.json("GET", "/v1/health")["queue_length"] == 0


def test_two_different_content_lengths_are_refused(server):
    answer = server.raw(b"POST /v1/jobs HTTP/1.1\r\n" + host(server) + AUTH
                        + b"Content-Length: 2\r\nContent-Length: 12\r\n\r\n{}{}{}{}{}{}")
    assert answers_on(answer) == [400]


def test_a_get_with_a_body_keeps_keep_alive_in_step(server):
    get = b"GET /v1/health HTTP/1.1\r\n" + host(server) + AUTH
    answer = server.raw(get + b"Content-Length: 20\r\n\r\nGET /v1/teapot HTTP/" + get + b"Connection: close\r\n\r\n")
    assert answers_on(answer) == [200, 200]  # the body was read as a body, not as a request


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server):
    answer = server.raw(b"POST /v1/jobs HTTP/1.1\r\n" + host(server) + AUTH
                        + b"Content-Length: 3000000\r\nExpect: 100-continue\r\n\r\n")
    assert status_of(answer) == 413 and b'"body_too_large"' in answer and b"100 Continue" not in answer


def test_a_chunked_body_over_the_limit_is_refused(server):
    chunk = b"x" * (1024 * 1024)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    answer = server.raw(b"POST /v1/jobs HTTP/1.1\r\n" + host(server) + AUTH + b"Transfer-Encoding: chunked\r\n\r\n"
                        + body)
    assert status_of(answer) == 413 and b'"body_too_large"' in answer


# ---- methods ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PUT", "DELETE", "PATCH", "BREW"])
def test_other_methods_get_a_json_405_with_allow(server, method):
    status, answer, headers = server.request(method, "/v1/jobs")
    assert status == 405 and answer["error"]["code"] == "method_not_allowed"
    assert set(headers["Allow"].split(", ")) == {"GET", "POST"} and "GET" in answer["error"]["message"]


def test_the_schema_needs_the_token_and_there_are_no_public_docs(server):
    assert server.request("GET", "/v1/openapi.json", token=None)[0] == 401
    status, schema, _ = server.request("GET", "/v1/openapi.json")
    assert status == 200 and "/v1/jobs" in schema["paths"] and "JobCreate" in schema["components"]["schemas"]
    for path in ("/docs", "/redoc", "/openapi.json"):
        status, answer, _ = server.request("GET", path)
        assert status == 404 and answer["error"]["code"] == "not_found"


# ---- JSON --------------------------------------------------------------------------------------------

def test_deeply_nested_json_and_huge_numbers_are_bad_json(server):
    for raw in (b"[" * 100000 + b"]" * 100000,
                b'{"image_b64": "x", "params": {"steps": 1' + b"0" * 5000 + b"}}",
                b'{"image_b64": "x", "params": {"a": ' + b"{\"a\": " * 5000 + b"1" + b"}" * 5001 + b"}"):
        status, answer, _ = server.request("POST", "/v1/jobs", raw_body=raw)
        assert status == 400 and answer["error"]["code"] in ("bad_json", "unknown_parameter"), answer


@pytest.mark.parametrize("params", [[], 0, False, "", "steps=5", 1.5])
def test_params_that_are_not_an_object_are_refused_not_defaulted(server, cat_png, params):
    status, answer, _ = server.request("POST", "/v1/jobs", {**job(cat_png), "params": params})
    assert status == 400 and answer["error"]["code"] == "bad_parameter", answer
    assert "'params' must be a JSON object" in answer["error"]["message"]


# ---- parameters -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, words", [
    ({"steps": 10 ** 40}, "'steps' must be between 1 and 1000"),
    ({"elevation": 1e308 * 10}, "'elevation' must be between -90 and 90"),
    ({"seed": 2 ** 64}, "'seed' must be between 0"),
    ({"crop_size": 63}, "'crop_size' must be -1 (no crop) or a whole number from 64 to 256"),
    ({"steps": "5"}, "'steps' must be a whole number"),
    ({"use_posterior_mean": 1}, "'use_posterior_mean' must be true or false"),
    ({"background": None}, "'background' must be one of auto, keep, remove"),
])
def test_every_parameter_is_checked_at_submit_time(server, cat_png, params, words):
    raw = json.dumps(job(cat_png, **params)).replace("Infinity", "1e999").encode()
    status, answer, _ = server.request("POST", "/v1/jobs", raw_body=raw)
    assert status == 400 and answer["error"]["code"] == "bad_parameter" and words in answer["error"]["message"]


@pytest.mark.parametrize("output_dir, code", [
    ("/tmp/with\u0000nul", "bad_parameter"),
    ("relative/folder", "bad_parameter"),
    ("", "bad_parameter"),
])
def test_unusable_output_dirs_are_refused_at_submit_time(server, cat_png, output_dir, code):
    status, answer, _ = server.request("POST", "/v1/jobs", job(cat_png, output_dir=output_dir))
    assert status == 400 and answer["error"]["code"] == code, answer


def test_an_output_dir_that_names_a_file_is_refused_at_submit_time(server, cat_png, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for output_dir in (a_file, a_file / "below"):
        status, answer, _ = server.request("POST", "/v1/jobs", job(cat_png, output_dir=str(output_dir)))
        assert status == 400 and answer["error"]["code"] == "bad_output_dir", answer
        assert "notes.txt" in answer["error"]["message"]
    assert a_file.read_text() == "mine"


# ---- images ------------------------------------------------------------------------------------------------

def test_a_fully_transparent_image_is_refused_as_a_job_too(server):
    transparent = png_bytes(Image.new("RGBA", (64, 64), (255, 0, 0, 0)))
    for background in ("auto", "keep"):
        status, answer, _ = server.request("POST", "/v1/jobs", job(transparent, background=background))
        assert status == 400 and answer["error"]["code"] == "empty_object" and "transparent" in answer["error"]["message"]
        status, answer, _ = server.request("POST", "/v1/preview", {"image_b64": job(transparent)["image_b64"],
                                                                   "params": {"background": background}})
        assert status == 400 and answer["error"]["code"] == "empty_object"


def test_a_filename_is_only_a_name(server, cat_png):
    status, answer, _ = server.request("POST", "/v1/jobs", {**job(cat_png), "filename": "x" * 300})
    assert status == 400 and answer["error"]["code"] == "bad_filename"
    status, answer, _ = server.request("POST", "/v1/jobs", {**job(cat_png), "filename": 5})
    assert status == 400 and answer["error"]["code"] == "bad_filename"


# ---- file routes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tail, status, code", [
    ("0/..%2F..%2Fetc%2Fpasswd", 400, "bad_file_name"),
    ("0/%2e%2e%2fcameras.json", 400, "bad_file_name"),
    ("0/..%5c..%5cwin.ini", 400, "bad_file_name"),
    ("0/.env", 400, "bad_file_name"),
    ("0/cameras.json%00.png", 400, "bad_file_name"),
    ("-1/cameras.json", 400, "bad_sample"),
    ("99999999999999999999/cameras.json", 400, "bad_sample"),
    ("0/cameras.json", 404, "no_such_job"),
])
def test_file_routes_refuse_paths_and_unknown_jobs(server, tail, status, code):
    got, answer, _ = server.request("GET", f"/v1/jobs/0123456789abcdef/files/{tail}")
    assert (got, answer["error"]["code"]) == (status, code)


# ---- browser headers ------------------------------------------------------------------------------------------

def test_requests_for_another_host_name_are_refused(server):
    for name in (b"evil.example", b"evil.example:80", b"127.0.0.1.evil.example"):
        answer = server.raw(b"GET /v1/health HTTP/1.1\r\nHost: " + name + b"\r\n" + AUTH + b"Connection: close\r\n\r\n")
        assert status_of(answer) == 403 and b'"forbidden_host"' in answer and b"--allow-host" in answer
    for name in (b"localhost", b"127.0.0.1", b"[::1]:1234"):
        answer = server.raw(b"GET /v1/health HTTP/1.1\r\nHost: " + name + b"\r\n" + AUTH + b"Connection: close\r\n\r\n")
        assert status_of(answer) == 200


def test_requests_from_web_pages_are_refused(server):
    status, answer, _ = server.request("GET", "/v1/health", headers={"Origin": "http://evil.example"})
    assert status == 403 and answer["error"]["code"] == "forbidden_origin" and "--allow-origin" in answer["error"]["message"]
    status, answer, _ = server.request("POST", "/v1/shutdown", {}, token=None, headers={"Origin": "null"})
    assert status == 403 and server.running


def test_an_allowed_origin_and_host_get_through(start_server):
    allowing = start_server("--allow-origin", "http://localhost:3000", "--allow-host", "studio.local")
    assert allowing.request("GET", "/v1/health", headers={"Origin": "http://localhost:3000"})[0] == 200
    assert allowing.request("GET", "/v1/health", headers={"Origin": "http://evil.example"})[0] == 403
    answer = allowing.raw(b"GET /v1/health HTTP/1.1\r\nHost: studio.local:8765\r\n" + AUTH + b"Connection: close\r\n\r\n")
    assert status_of(answer) == 200


# ---- the log -------------------------------------------------------------------------------------------------------

def test_the_log_has_one_line_per_request_and_no_traceback(server):
    server.request("GET", "/v1/teapot")
    time.sleep(0.5)  # the harness reads the log in a thread
    assert any(re.search(r"^glimpse\.http: 127\.0\.0\.1 GET /v1/teapot 404 [\d.]+ ms$", line) for line in server.stderr_lines)
    assert not any("Traceback" in line for line in server.stderr_lines), "\n".join(server.stderr_lines)


# ---- the queue ---------------------------------------------------------------------------------------------------

def test_a_full_queue_answers_429_with_retry_after(server, cat_png):
    running = server.submit(cat_png, {"steps": 1000})
    server.wait_for(running["id"], ("sampling",))
    waiting = [server.submit(cat_png, {"seed": seed}) for seed in (1, 2)]
    status, answer, headers = server.request("POST", "/v1/jobs", job(cat_png))
    assert status == 429 and answer["error"]["code"] == "queue_full" and "--max-queue" in answer["error"]["message"]
    assert int(headers["Retry-After"]) > 0
    assert server.json("GET", "/v1/health")["queue_length"] == 2
    for one in (*waiting, running):
        server.json("POST", f"/v1/jobs/{one['id']}/cancel", {}, expect=202)
    assert server.wait_for(running["id"])["state"] == "cancelled"
    assert server.submit(cat_png)["state"] == "queued"  # room again
