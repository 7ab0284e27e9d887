"""`download` against a local HTTP server: redirect with the sha256, resume, checksum, offline; and
against a hostile one: a file that changes between two runs (no splicing), a body without end, a
file with no checksum anywhere."""
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
    announced_sha = CONTENT_SHA  # on the redirect; None: no checksum anywhere
    content = CONTENT  # what /cdn/ serves now
    etag = '"not-a-sha"'  # the /cdn/ file's validator; None: no ETag (and no Last-Modified)
    ranges_seen = []
    if_ranges_seen = []

    def do_GET(self):
        if self.path.startswith("/resolve/"):
            self.send_response(302)
            self.send_header("Location", "/cdn/" + self.path.split("/", 2)[2])
            if type(self).announced_sha:
                self.send_header("X-Linked-Etag", f'"{type(self).announced_sha}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        content, etag, start = type(self).content, type(self).etag, 0
        range_header, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        type(self).ranges_seen.append(range_header)
        type(self).if_ranges_seen.append(if_range)
        if range_header and (if_range is None or if_range == etag):  # RFC 9110 13.1.5
            start = int(re.match(r"bytes=(\d+)-", range_header).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(content) - start))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        body = content[start:]
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
    FileHost.content, FileHost.etag = CONTENT, '"not-a-sha"'
    FileHost.ranges_seen, FileHost.if_ranges_seen = [], []
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
    assert FileHost.if_ranges_seen == [None, '"not-a-sha"']  # only if it is still the same file
    assert dest.read_bytes() == CONTENT and not part.exists()
    assert not (tmp_path / "model.ckpt.part.json").exists()


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


OTHER = bytes(reversed(range(256))) * 4096  # another file of the same length


def test_a_file_that_changed_between_two_runs_is_fetched_whole_not_spliced(host, tmp_path, capsys):
    """No checksum anywhere (--no-verify): only the validator can tell that the file changed."""
    FileHost.announced_sha = None
    FileHost.cut_after = 300_000
    dest, part = tmp_path / "model.ckpt", tmp_path / "model.ckpt.part"
    with pytest.raises(SetupError, match="resume"):
        download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False, no_verify=True)
    assert part.read_bytes() == CONTENT[:part.stat().st_size]
    FileHost.content, FileHost.etag = OTHER, '"other"'
    download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False, no_verify=True)
    assert FileHost.if_ranges_seen[-1] == '"not-a-sha"'  # asked for the rest of the old file ...
    assert dest.read_bytes() == OTHER  # ... and got the new one whole
    assert "WARNING: --no-verify" in capsys.readouterr().err


def test_without_a_validator_a_partial_file_is_started_over(host, tmp_path, capsys):
    FileHost.etag = None
    FileHost.cut_after = 300_000
    dest = tmp_path / "model.ckpt"
    with pytest.raises(SetupError, match="resume"):
        download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False)
    download_checkpoint(f"{host}/resolve/model.ckpt", dest, retries=0, show_progress=False)
    assert FileHost.ranges_seen == [None, None]  # no Range request without If-Range
    assert dest.read_bytes() == CONTENT
    assert "starting over" in capsys.readouterr().err


def test_a_file_without_any_checksum_is_refused_before_its_body(host, tmp_path):
    FileHost.announced_sha = None
    dest = tmp_path / "model.ckpt"
    with pytest.raises(SetupError, match="--no-verify") as caught:
        download_checkpoint(f"{host}/resolve/model.ckpt", dest, show_progress=False)
    assert caught.value.code == "no_checksum" and "--sha256" in caught.value.message
    assert list(tmp_path.iterdir()) == []  # nothing installed, no .part
    download_checkpoint(f"{host}/resolve/model.ckpt", dest, sha256=CONTENT_SHA, show_progress=False)
    assert dest.read_bytes() == CONTENT


class EndlessHost(BaseHTTPRequestHandler):
    """A body without a length that never ends (HTTP/1.0: it ends when the connection closes)."""

    sent = 0

    def do_GET(self):
        self.send_response(200)
        self.send_header("X-Linked-Etag", f'"{CONTENT_SHA}"')
        self.end_headers()
        try:
            while type(self).sent < 64 * len(CONTENT):  # a bound for the test; the client must stop far earlier
                self.wfile.write(CONTENT)
                type(self).sent += len(CONTENT)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def test_an_endless_body_stops_at_the_cap_and_is_deleted(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndlessHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dest = tmp_path / "model.ckpt"
    try:
        with pytest.raises(SetupError, match="sent more than 4194304 bytes"):
            download_checkpoint(f"http://127.0.0.1:{server.server_address[1]}/f", dest, show_progress=False,
                                max_bytes=4 * len(CONTENT))
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []


def test_an_announced_length_over_the_cap_is_refused_at_once(host, tmp_path):
    with pytest.raises(SetupError, match="more than the 1000 allowed"):
        download_checkpoint(f"{host}/resolve/model.ckpt", tmp_path / "m.ckpt", show_progress=False, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []
