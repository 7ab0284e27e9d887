"""`python -m inference_server download`: fetch the checkpoint with resume and a checksum check.

Standard library only. The file grows as `<dest>.part`; an interrupted download continues from
there with an HTTP Range request (on the next try or the next run), and the file gets its final
name only once its size and sha256 are right. The expected sha256 is `--sha256`, else the one
Hugging Face announces for LFS files (`X-Linked-Etag`, on the redirect to the storage host, or
an `ETag` that is a bare sha256).

What keeps a wrong file out:
- A resume sends `If-Range` with the validator (a strong ETag, else Last-Modified) that the
  storage host gave for the partial file, kept beside it in `<dest>.part.json`; a changed file
  comes back whole (200) and replaces the partial one. Without a validator it starts over.
- It reads no further than the announced length, and never more than `max_bytes` (refused at
  once when the announced length is larger).
- Without a known sha256 it refuses before the body, unless `no_verify` (`--no-verify`) is
  given, which is said on stderr (the add-on's download log).

With GLIMPSE_PROGRESS_LINES=1 in the environment (the add-on's Download Checkpoint sets it), the
progress bar is replaced by machine-readable lines on stderr, `GLIMPSE_DOWNLOAD {json}`:
{"bytes": n, "total": n or null} as the file grows, {"phase": "checksum"} before the sha256 check,
{"phase": "saved", "path": ...} at the end.
"""
import http.client
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import SetupError
from ..version import __version__
from .checkpoints import CHECKPOINT_STEM, default_download_path, file_sha256, project_root

DEFAULT_URL = "https://huggingface.co/camenduru/SyncDreamer/resolve/main/syncdreamer-pretrain.ckpt"
CHUNK_BYTES = 1 << 20
# The published checkpoint is about 5 GB: no file we fetch is larger than this by default.
DEFAULT_MAX_BYTES = 8 * 1024**3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
PROGRESS_LINES_ENV = "GLIMPSE_PROGRESS_LINES"
PROGRESS_MARK = "GLIMPSE_DOWNLOAD "
PROGRESS_INTERVAL_S = 0.25  # between two byte-count lines


class _Interrupted(Exception):
    """The connection broke mid-way; what arrived is kept in the .part file."""


class _RedirectRecorder(urllib.request.HTTPRedirectHandler):
    """Follows redirects like urllib does, and keeps the headers of every hop.

    Hugging Face puts the file's sha256 and size (X-Linked-Etag, X-Linked-Size) on the
    redirect answer, not on the storage host's answer that finally carries the bytes.
    """

    def __init__(self):
        super().__init__()
        self.hop_headers = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.hop_headers.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def sha256_from_headers(headers) -> str:
    """A sha256 announced in X-Linked-Etag or ETag (quotes and W/ removed), or None."""
    for name in ("X-Linked-Etag", "ETag"):
        value = headers.get(name) if headers is not None else None
        if value:
            value = value.strip()
            if value.startswith("W/"):
                value = value[2:]
            value = value.strip('"').lower()
            if _SHA256.match(value):
                return value
    return None


def offline_message(url: str, dest: Path, reason) -> str:
    return (
        f"Cannot reach {url} ({reason}). This machine seems to be offline, or the host is blocked.\n"
        "To install the checkpoint by hand:\n"
        f"  1. On a machine with internet access, download {url} (several GB).\n"
        f"  2. Copy it to {dest}\n"
        f"     (or to {project_root() / 'ckpt' / (CHECKPOINT_STEM + '.ckpt')}, or anywhere and pass "
        "--checkpoint PATH or set GLIMPSE_CHECKPOINT).\n"
        "  3. Optional: make a safetensors copy that loads faster and without pickle:\n"
        f"     python -m inference_server convert {dest} {dest.with_suffix('.safetensors')} --trust-pickle"
    )


def download_checkpoint(url: str = DEFAULT_URL, dest=None, sha256: str = None, *, retries: int = 3,
                        timeout: float = 30.0, show_progress: bool = True, force: bool = False,
                        no_verify: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Download `url` to `dest` (default ~/.cache/glimpse3d/syncdreamer-pretrain.ckpt); return dest.

    Refuses (SetupError) a file without a known sha256 unless `no_verify`, and a file larger
    than `max_bytes`."""
    dest = Path(dest).expanduser() if dest else default_download_path()
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not _SHA256.match(sha256):
            raise SetupError(f"--sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if dest.exists() and not force:
        if sha256 and file_sha256(dest) != sha256:
            raise SetupError(f"{dest} exists but its sha256 is not {sha256}. Delete it, or run "
                             "download with --force to fetch it again.")
        _say(f"{dest} is already there; nothing to do (use --force to fetch it again).")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if force:
        _discard(part)

    attempt = 0
    while True:
        try:
            expected_sha, total = _fetch_into(url, part, dest, timeout, show_progress,
                                              checksum_known=bool(sha256), no_verify=no_verify,
                                              max_bytes=max_bytes)
            break
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                kept = part.stat().st_size if part.exists() else 0
                raise SetupError(f"The download broke off ({exc}); {kept} bytes are kept "
                                 f"in {part}. Run the same command again to resume.") from None
            _say(f"The download broke off ({exc}); resuming (try {attempt} of {retries}).")
    expected_sha = sha256 or expected_sha
    size = part.stat().st_size
    if total is not None and size != total:
        _discard(part)
        raise SetupError(f"The download has {size} bytes but the server announced {total}; the partial "
                         "file was deleted. Run the command again.")
    if expected_sha:
        _say("Checking the sha256 ...")
        _progress_line({"phase": "checksum"})
        actual = file_sha256(part)
        if actual != expected_sha:
            _discard(part)
            raise SetupError(f"Checksum mismatch for {url}: expected sha256 {expected_sha}, got {actual}. "
                             "The download was deleted; run the command again. If it keeps happening, "
                             "the file on the server changed: check the URL or pass the right --sha256.")
        _say(f"sha256 OK: {actual}")
    else:
        _say(f"WARNING: --no-verify: installing {dest} ({size} bytes, sha256 {file_sha256(part)}) from {url} "
             "without a checksum check.")
    os.replace(part, dest)
    _validator_path(part).unlink(missing_ok=True)
    _say(f"Saved {dest}")
    _progress_line({"phase": "saved", "path": str(dest)})
    return dest


def no_checksum_message(url: str) -> str:
    return (f"No sha256 is known for {url}: the server announces none and --sha256 was not given, so a wrong "
            "or damaged file could not be told from the right one. Pass --sha256 with the publisher's checksum, "
            "or --no-verify to install the file unchecked.")


def _fetch_into(url: str, part: Path, dest: Path, timeout: float, show_progress: bool, *,
                checksum_known: bool, no_verify: bool, max_bytes: int):
    """Append the rest of `url` to `part`; return (sha256 announced or None, total size or None)."""
    offset = part.stat().st_size if part.exists() else 0
    kept = _read_validator(part, url) if offset else {}
    validator = kept.get("etag") or kept.get("last_modified")
    if offset and not validator:
        _say(f"{part} has no validator (ETag or Last-Modified) from its server to prove it is a part of the "
             "same file; starting over.")
        _discard(part)
        offset = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"glimpse3d-syncdreamer/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        request.add_header("If-Range", validator)  # a changed file comes back whole (200)
    recorder = _RedirectRecorder()
    opener = urllib.request.build_opener(recorder)
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is no prefix of the file any more: start over
            _discard(part)
            raise _Interrupted("the partial file did not fit the server's file; starting over") from None
        raise SetupError(f"The server answered {exc.code} {exc.reason} for {url}. Check the URL "
                         "(--url), or download the file by hand (see --help).") from None
    except (urllib.error.URLError, OSError) as exc:  # no network, no such host, refused, timed out
        raise SetupError(offline_message(url, dest, getattr(exc, "reason", exc))) from None
    with response:
        announced = sha256_from_headers(response.headers)
        for headers in recorder.hop_headers:
            announced = sha256_from_headers(headers) or announced
        if offset and response.status == 206:
            if _range_start(response) != offset:
                _discard(part)
                raise _Interrupted("the server sent another part of the file than asked for; starting over")
            announced = announced or kept.get("sha256")
        elif offset:
            offset = 0  # the file changed, or the server ignored the Range header: take it all again
        elif response.status == 206:
            raise SetupError(f"{url} answered with a part of the file (206) to a request for all of it; check the URL.")
        total = _total_size(response, offset)
        if total is not None and total > max_bytes:
            raise SetupError(f"{url} announces {total} bytes, more than the {max_bytes} allowed; check the URL "
                             "(or raise --max-gb for a larger file).")
        if not announced and not checksum_known and not no_verify:
            raise SetupError(no_checksum_message(url), code="no_checksum")
        _keep_validator(part, url, response.headers, total, announced)
        limit = total if total is not None else max_bytes
        bar = _progress_bar(total, offset, show_progress)
        try:
            with open(part, "ab" if offset else "wb") as out:
                size = offset
                while size < limit:
                    try:
                        chunk = response.read(min(CHUNK_BYTES, limit - size))
                    except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as exc:
                        raise _Interrupted(type(exc).__name__) from None
                    if not chunk:
                        break
                    out.write(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
                if total is None and size >= limit and response.read(1):
                    out.close()
                    _discard(part)
                    raise SetupError(f"{url} sent more than {max_bytes} bytes without announcing a length; the "
                                     "download was deleted. Check the URL (or raise --max-gb for a larger file).")
        finally:
            bar.close()
    if total is not None and part.stat().st_size < total:
        raise _Interrupted(f"got {part.stat().st_size} of {total} bytes")
    return announced, total


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _keep_validator(part: Path, url: str, headers, total, announced_sha) -> None:
    """Note what `part` is a prefix of: the strong ETag and Last-Modified of the answer."""
    etag = (headers.get("ETag") or "").strip()
    record = {"url": url, "etag": "" if etag.startswith("W/") else etag,
              "last_modified": (headers.get("Last-Modified") or "").strip(), "total": total, "sha256": announced_sha}
    _validator_path(part).write_text(json.dumps(record), encoding="utf-8")


def _read_validator(part: Path, url: str) -> dict:
    """The record of `part`, or {} when there is none, it is unreadable or for another URL."""
    try:
        record = json.loads(_validator_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and record.get("url") == url else {}


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_path(part).unlink(missing_ok=True)


def _range_start(response):
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _total_size(response, offset: int):
    """The size of the whole file, from Content-Range (206) or Content-Length (200)."""
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match and match.group(3) != "*":
            return int(match.group(3))
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length) + (offset if response.status == 206 else 0)
    return None


def _progress_bar(total, initial, enabled):
    if os.environ.get(PROGRESS_LINES_ENV) == "1":
        return _ProgressLines(total, initial)
    from tqdm import tqdm  # imported here: the add-on imports this module for PROGRESS_MARK

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc="download", file=sys.stderr, disable=not enabled)


class _ProgressLines:
    """tqdm's update/close, printing `GLIMPSE_DOWNLOAD {"bytes", "total"}` lines for a program."""

    def __init__(self, total, initial):
        self.total, self.done, self.last = total, initial, 0.0
        _progress_line({"bytes": self.done, "total": self.total})

    def update(self, count: int):
        self.done += count
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            _progress_line({"bytes": self.done, "total": self.total})

    def close(self):
        _progress_line({"bytes": self.done, "total": self.total})


def _progress_line(fields: dict):
    if os.environ.get(PROGRESS_LINES_ENV) == "1":
        print(PROGRESS_MARK + json.dumps(fields), file=sys.stderr, flush=True)


def _say(text: str):
    print(text, file=sys.stderr, flush=True)
