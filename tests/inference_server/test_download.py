"""`download` against a local HTTP server: redirect with the sha256, resume, checksum, offline."""
import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inference_server.generation.download import download_checkpoint
from inference_server.errors import SetupError

CONTENT = bytes(range(256)) * 4096  # 1 MiB
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()


class FileHost(BaseHTTPRequestHandler):
    """/resolve/<name> redirects like Hugging Face (with X-Linked-Etag); /cdn/<name> has the bytes."""

    protocol_version = "HTTP/1.1"
    cut_after = None  # bytes of the body to send before dropping the connection (once)
    announced_sha = CONTENT_SHA
    ranges_seen = []

    def do_GET(self):
        if self.path.startswith("/resolve/"):
            self.send_response(302)
            self.send_header("Location", "/cdn/" + self.path.split("/", 2)[2])
            self.send_header("X-Linked-Etag", f'"{type(self).announced_sha}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        range_header = self.headers.get("Range")
        type(self).ranges_seen.append(range_header)
        if range_header:
            start = int(re.match(r"bytes=(\d+)-", range_header).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(CONTENT) - 1}/{len(CONTENT)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(CONTENT) - start))
        self.send_header("ETag", '"not-a-sha"')
        self.end_headers()
        body = CONTENT[start:]
        cut = type(self).cut_after
        if cut is not None:
            type(self).cut_after = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def host():
    FileHost.cut_after = None
    FileHost.announced_sha = CONTENT_SHA
    FileHost.ranges_seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_follows_the_redirect_and_checks_the_announced_sha256(host, tmp_path, capsys):
    dest = tmp_path / "ckpt" / "model.ckpt"
    assert download_checkpoint(f"{host}/resolve/model.ckpt", dest, show_progress=False) == dest
    assert dest.read_bytes() == CONTENT
    assert not dest.with_name("model.ckpt.part").exists()
    assert f"sha256 OK: {CONTENT_SHA}" in capsys.readouterr().err


def test_a_broken_download_resumes_where_it_stopped(host, tmp_path):
    dest = tmp_path / "model.ckpt"
    part = tmp_path / "model.ckpt.part"
    FileHost.cut_after = 300_000
    with pytest.raises(SetupError, match="Run the same command again to resume"):
        download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False)
    assert 0 < part.stat().st_size < len(CONTENT) and not dest.exists()
    kept = part.stat().st_size
    download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False)
    assert FileHost.ranges_seen == [None, f"bytes={kept}-"]
    assert dest.read_bytes() == CONTENT and not part.exists()


def test_retries_resume_within_one_run(host, tmp_path):
    FileHost.cut_after = 100_000
    dest = download_checkpoint(f"{host}/resolve/model.ckpt", tmp_path / "m.ckpt", show_progress=False)
    assert dest.read_bytes() == CONTENT
    assert FileHost.ranges_seen[1].startswith("bytes=")


def test_a_checksum_mismatch_deletes_the_download(host, tmp_path):
    FileHost.announced_sha = "0" * 64
    dest = tmp_path / "model.ckpt"
    with pytest.raises(SetupError, match="Checksum mismatch") as caught:
        download_checkpoint(f"{host}/resolve/model.ckpt", dest, show_progress=False)
    assert "0" * 64 in str(caught.value) and CONTENT_SHA in str(caught.value)
    assert not dest.exists() and not (tmp_path / "model.ckpt.part").exists()
    # a --sha256 given by the person wins over the header
    download_checkpoint(f"{host}/resolve/model.ckpt", dest, sha256=CONTENT_SHA, show_progress=False)
    assert dest.read_bytes() == CONTENT


def test_offline_fails_at_once_with_the_manual_steps(tmp_path):
    with socket.socket() as probe:  # a port on which nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = tmp_path / "model.ckpt"
    url = f"http://127.0.0.1:{port}/model.ckpt"
    with pytest.raises(SetupError) as caught:
        download_checkpoint(url, dest, show_progress=False, timeout=5)
    message = str(caught.value)
    assert "offline" in message and url in message and str(dest) in message
    assert "--checkpoint" in message and "convert" in message
    assert not dest.exists()
