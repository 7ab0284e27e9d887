"""Download Checkpoint: the server's own resumable, checksummed download
(`python -m inference_server download`) run in the server environment, its progress lines read
back, and an optional conversion to .safetensors. No bpy."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .server_settings import child_environment
from .setup_task import Progress
from .streamed_process import run_streamed

from .bundled import download

PROGRESS_LINES_ENV, PROGRESS_MARK = download.PROGRESS_LINES_ENV, download.PROGRESS_MARK

CHECKPOINT_NAME = "syncdreamer-pretrain.ckpt"
DOWNLOAD, CHECKSUM, CONVERT = "Downloading the checkpoint", "Checking the sha256", "Converting to .safetensors"
DOWNLOAD_SHARE = 85.0  # percent of the task when it converts afterwards (the rest is the conversion)


class DownloadError(Exception):
    """The download or conversion failed; the message is the server's own (what to do)."""


def fetch_checkpoint(python: str, dest: Path, server_root: Path, log_path: Path, *, cancel: threading.Event,
                     on_progress=lambda progress: None, url: str = "", sha256: str = "",
                     convert: bool = False, no_verify: bool = False, environ=None) -> Path:
    """Download into `dest` (and convert it next to it); return the file to set as Checkpoint.
    Raises DownloadError, or Cancelled (the .part file stays for the next try to resume).

    The downloader's rules hold here too: a file without a known sha256 (none announced by the
    server, `sha256` not given) is refused unless `no_verify`, which the download log records."""
    env = child_environment(os.environ if environ is None else environ, Path(server_root), token="")
    env[PROGRESS_LINES_ENV] = "1"
    share = DOWNLOAD_SHARE if convert else 100.0
    argv = [python, "-m", "inference_server", "download", "--dest", str(dest)]
    argv += ["--url", url] if url else []
    argv += ["--sha256", sha256] if sha256 else []
    argv += ["--no-verify"] if no_verify else []
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        saved = _run(argv, env, log, cancel, lambda line: _download_progress(line, share, on_progress))
        path = Path(saved or dest)
        if not convert:
            return path
        target = path.with_suffix(".safetensors")
        on_progress(Progress(CONVERT, target.name, share, CONVERT))
        # --trust-pickle: the file is the published checkpoint whose sha256 was just checked
        # (or the person chose no_verify for a file they trust).
        _run([python, "-m", "inference_server", "convert", str(path), str(target), "--trust-pickle"],
             env, log, cancel, lambda line: None)
        on_progress(Progress(CONVERT, target.name, 100.0, "Converted"))
        return target


def parse_progress_line(line: str) -> dict | None:
    """The fields of a `GLIMPSE_DOWNLOAD {json}` line, or None for any other line."""
    if not line.startswith(PROGRESS_MARK):
        return None
    try:
        return json.loads(line[len(PROGRESS_MARK):])
    except ValueError:
        return None


def _download_progress(line: str, share: float, on_progress) -> str | None:
    fields = parse_progress_line(line)
    if fields is None:
        return None
    if fields.get("phase") == "checksum":
        on_progress(Progress(CHECKSUM, CHECKPOINT_NAME, share, CHECKSUM))
    elif fields.get("phase") == "saved":
        on_progress(Progress(DOWNLOAD, CHECKPOINT_NAME, share, "Downloaded"))
        return fields["path"]
    elif "bytes" in fields:
        done, total = fields["bytes"], fields.get("total")
        fraction = done / total if total else 0.0
        size = f"{done / 2**30:.2f} of {total / 2**30:.2f} GB" if total else f"{done / 2**30:.2f} GB"
        on_progress(Progress(DOWNLOAD, CHECKPOINT_NAME, share * fraction, size))
    return None


def _run(argv, env, log, cancel, on_line) -> str | None:
    """Run one server command; return what on_line returned last (the saved path); DownloadError
    with the command's own message when it fails."""
    found, lines = [None], []

    def each(line: str) -> None:
        lines.append(line)
        result = on_line(line)
        if result:
            found[0] = result

    code = run_streamed(argv, on_line=each, cancel=cancel, log=log, env=env, cwd=env["PYTHONPATH"])
    if code != 0:
        said = [line for line in lines if line.strip() and not line.startswith(PROGRESS_MARK)]
        raise DownloadError("\n".join(said[-6:]) or f"{argv[3]} failed with exit code {code}")
    return found[0]
