"""The client against a hostile server on 127.0.0.1: redirects that would carry the token to
another server, and answers larger than the protocol allows (announced, or endless)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glimpse_syncdreamer_addon.core.client import GlimpseClient, ServerError
from glimpse_syncdreamer_addon.core.bundled import protocol

TOKEN = "secret-token"


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with {} and notes its Authorization header (the 'other server')."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_GET

    def log_message(self, *args):
        pass


class Hostile(BaseHTTPRequestHandler):
    """What it answers depends on the path; `self.server.target` is where it redirects to."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/v1/health") and self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/v1/moved":
            self._json({"version": "moved"})
        elif self.path == "/v1/jobs/big":  # announces 260 MB and sends a little
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(260 * 1000 * 1000))
            self.end_headers()
            self.wfile.write(b'{"id": "')
        elif self.path.startswith("/v1/jobs/endless"):  # no length: a body that never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                self.wfile.write(b'{"id": "')
                while self.server.sent < 256 * protocol.MIB:  # the client must stop long before
                    self.wfile.write(b"x" * 65536)
                    self.server.sent += 65536
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path.startswith("/v1/jobs/job1/files/0/"):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()  # HTTP/1.0, no length: the body ends when the connection closes
            try:
                self.wfile.write(b"p" * 100_000)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self._json({"error": {"code": "not_found", "message": self.path}}, 404)

    def _json(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen, server.redirect_to, server.sent = [], None, 0
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.fixture
def servers():
    hostile, other = _serve(Hostile), _serve(Recorder)
    yield hostile, other
    for server in (hostile, other):
        server.shutdown()
        server.server_close()


def _url(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("where", ["other port", "other scheme", "other host"])
def test_a_redirect_to_another_server_is_refused_and_the_token_stays(servers, where):
    hostile, other = servers
    port = other.server_address[1]
    hostile.redirect_to = {"other port": f"http://127.0.0.1:{port}/v1/health",
                           "other scheme": f"https://127.0.0.1:{hostile.server_address[1]}/v1/health",
                           "other host": f"http://localhost:{hostile.server_address[1]}/v1/health"}[where]
    with pytest.raises(ServerError) as info:
        GlimpseClient(_url(hostile), TOKEN).health()
    assert info.value.code == "redirect_refused"
    assert hostile.redirect_to in info.value.message and "Server URL" in info.value.message
    assert other.seen == []  # the other server never saw the token
    assert hostile.seen == [("/v1/health", f"Bearer {TOKEN}")]  # and it was not sent again anywhere


def test_a_redirect_within_the_same_server_is_followed(servers):
    hostile, _ = servers
    hostile.redirect_to = f"{_url(hostile)}/v1/moved"
    assert GlimpseClient(_url(hostile), TOKEN).health() == {"version": "moved"}


def test_an_announced_answer_over_the_json_limit_is_refused_unread(servers):
    hostile, _ = servers
    with pytest.raises(ServerError) as info:
        GlimpseClient(_url(hostile), TOKEN).get_job("big")
    assert info.value.code == "answer_too_large" and str(protocol.MAX_JSON_ANSWER_BYTES) in info.value.message


def test_an_endless_answer_is_cut_at_the_json_limit(servers):
    hostile, _ = servers
    with pytest.raises(ServerError) as info:
        GlimpseClient(_url(hostile), TOKEN, timeout=30).get_job("endless")
    assert info.value.code == "answer_too_large"
    # the connection was closed after about the limit; the server did not get to send its 256 MiB
    assert hostile.sent < 64 * protocol.MIB


def test_a_file_longer_than_its_listed_size_is_refused(servers, tmp_path):
    hostile, _ = servers
    dest = tmp_path / "view_00.png"
    with pytest.raises(ServerError) as info:
        GlimpseClient(_url(hostile), TOKEN).download_file("job1", 0, "view_00.png", dest, size=1000)
    assert info.value.code == "answer_too_large"
    assert dest.stat().st_size <= 1000  # never more on disk than the list announced


def test_a_file_shorter_than_its_listed_size_is_refused(servers, tmp_path):
    hostile, _ = servers
    with pytest.raises(ServerError) as info:
        GlimpseClient(_url(hostile), TOKEN).download_file("job1", 0, "view_00.png", tmp_path / "v.png",
                                                          size=200_000)
    assert info.value.code == "bad_answer" and "200000" in info.value.message
