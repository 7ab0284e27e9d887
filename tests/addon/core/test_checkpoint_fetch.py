"""Download Checkpoint against a local HTTP server (127.0.0.1): the server's own download runs
as a child process (this project's Python as the server environment) and its progress lines reach
the setup task that the panel draws; cancel keeps the partial file, the next run resumes it, and a
checksum failure is reported with the downloader's own message."""
import hashlib
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glimpse_syncdreamer_addon.core import setup_task as st
from glimpse_syncdreamer_addon.core.checkpoint_fetch import CHECKSUM, DOWNLOAD, fetch_checkpoint, parse_progress_line

CONTENT = bytes(range(256)) * (4 * 4096)  # 4 MiB
CONTENT_SHA = hashlib.sha256(CONTENT).hexdigest()
CHUNK = 64 * 1024


class SlowHost(BaseHTTPRequestHandler):
    """Sends the file in 64 KiB pieces, a little slowly; with `stall_after` set it stops sending
    after that many bytes until `release` is set (a download that hangs: only Cancel ends it)."""

    protocol_version = "HTTP/1.1"
    content = CONTENT
    announce_sha = True  # the ETag is the file's sha256 (as Hugging Face's); False: no checksum anywhere
    stall_after = None
    release = threading.Event()
    ranges_seen = []

    def do_GET(self):
        content, start = type(self).content, 0
        range_header = self.headers.get("Range")
        type(self).ranges_seen.append(range_header)
        if range_header:
            start = int(re.match(r"bytes=(\d+)-", range_header).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(content) - start))
        if type(self).announce_sha:
            self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.end_headers()
        try:
            for offset in range(start, len(content), CHUNK):
                if type(self).stall_after is not None and offset >= type(self).stall_after:
                    type(self).release.wait(30)
                    return
                self.wfile.write(content[offset:offset + CHUNK])
                self.wfile.flush()
                time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def host():
    SlowHost.content, SlowHost.stall_after, SlowHost.release, SlowHost.ranges_seen = CONTENT, None, threading.Event(), []
    SlowHost.announce_sha = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/syncdreamer-pretrain.ckpt"
    SlowHost.release.set()
    server.shutdown()
    server.server_close()


def _download(task, tmp_path, repo_root, url, *, wait=True, sha256="", convert=False, no_verify=False):
    seen = []

    def work(cancel, on_progress):
        def record(progress):
            seen.append(progress)
            on_progress(progress)
        return fetch_checkpoint(sys.executable, tmp_path / "ckpt" / "syncdreamer-pretrain.ckpt", repo_root,
                                tmp_path / "download.log", cancel=cancel, on_progress=record, url=url,
                                sha256=sha256, convert=convert, no_verify=no_verify)

    return task.start(st.DOWNLOAD, work, wait=wait), seen


def test_progress_reaches_the_task_and_the_file_is_checked_and_saved(host, tmp_path, repo_root):
    task = st.SetupTask()
    outcome, seen = _download(task, tmp_path, repo_root, host)
    assert outcome.state == st.DONE and task.state == st.DONE
    assert outcome.result == tmp_path / "ckpt" / "syncdreamer-pretrain.ckpt"
    assert outcome.result.read_bytes() == CONTENT
    downloading = [p.percent for p in seen if p.phase == DOWNLOAD and p.message.endswith("GB")]
    assert len(downloading) >= 3 and downloading == sorted(downloading)  # several lines, growing
    assert downloading[0] < 50 and downloading[-1] == 100.0
    assert any(p.phase == CHECKSUM for p in seen)
    assert task.progress.text == "Downloading the checkpoint syncdreamer-pretrain.ckpt: 100%"
    assert "sha256 OK" in (tmp_path / "download.log").read_text()


def test_cancel_keeps_the_partial_file_and_the_next_run_resumes_it(host, tmp_path, repo_root):
    SlowHost.stall_after = 1024 * 1024
    task = st.SetupTask()
    _download(task, tmp_path, repo_root, host, wait=False)
    deadline = time.monotonic() + 60
    while not (task.progress.phase == DOWNLOAD and task.progress.percent > 0):
        assert time.monotonic() < deadline and task.running, task.error
        time.sleep(0.05)
    task.cancel()
    while task.running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert task.take_finished().state == st.CANCELLED and task.state == st.CANCELLED
    part = tmp_path / "ckpt" / "syncdreamer-pretrain.ckpt.part"
    kept = part.stat().st_size
    assert 0 < kept <= 1024 * 1024 and not (tmp_path / "ckpt" / "syncdreamer-pretrain.ckpt").exists()

    SlowHost.stall_after = None
    SlowHost.release.set()
    outcome, seen = _download(task, tmp_path, repo_root, host)
    assert outcome.state == st.DONE and outcome.result.read_bytes() == CONTENT
    assert SlowHost.ranges_seen[-1] == f"bytes={kept}-"  # resumed, not started over
    assert seen[0].percent >= 100 * kept / len(CONTENT) - 1e-6


def test_a_checksum_failure_is_reported_and_the_bad_file_deleted(host, tmp_path, repo_root):
    task = st.SetupTask()
    outcome, _ = _download(task, tmp_path, repo_root, host, sha256="0" * 64)
    assert outcome.state == st.FAILED and task.state == st.FAILED
    assert "Checksum mismatch" in task.error and CONTENT_SHA in task.error
    assert not list((tmp_path / "ckpt").iterdir())  # neither the file nor its .part


def test_a_file_without_a_checksum_is_refused_unless_no_verify(host, tmp_path, repo_root):
    SlowHost.announce_sha = False
    task = st.SetupTask()
    outcome, _ = _download(task, tmp_path, repo_root, host)
    assert outcome.state == st.FAILED
    assert "No sha256 is known" in task.error and "--no-verify" in task.error
    assert not list((tmp_path / "ckpt").iterdir())  # nothing installed
    outcome, _ = _download(task, tmp_path, repo_root, host, no_verify=True)
    assert outcome.state == st.DONE and outcome.result.read_bytes() == CONTENT
    assert "WARNING: --no-verify" in (tmp_path / "download.log").read_text()  # the choice is on record


def test_progress_lines_are_parsed_and_other_lines_ignored():
    assert parse_progress_line('GLIMPSE_DOWNLOAD {"bytes": 5, "total": 10}') == {"bytes": 5, "total": 10}
    assert parse_progress_line("Saved /x/y.ckpt") is None
    assert parse_progress_line("GLIMPSE_DOWNLOAD {broken") is None


@pytest.mark.slow
def test_convert_afterwards_gives_the_safetensors_file(host, tmp_path, repo_root):
    import io

    import torch
    from safetensors.torch import load_file

    weights = {"model.diffusion_model.w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    buffer = io.BytesIO()
    torch.save({"state_dict": weights}, buffer)
    SlowHost.content = buffer.getvalue()
    task = st.SetupTask()
    outcome, seen = _download(task, tmp_path, repo_root, host, convert=True)
    assert outcome.state == st.DONE, task.error
    assert outcome.result == tmp_path / "ckpt" / "syncdreamer-pretrain.safetensors"
    assert torch.equal(load_file(outcome.result)["model.diffusion_model.w"], weights["model.diffusion_model.w"])
    assert seen[-1].percent == 100.0 and seen[-1].phase == "Converting to .safetensors"
    assert max(p.percent for p in seen if p.phase == DOWNLOAD) == 85.0  # the download's share
