"""HTTP client for the inference server's protocol (docs/protocol.md), standard library only.

Every failure becomes a `ServerError` whose message says what is wrong and what to do, so the
panel and scripts can show it as it is.

The token goes to the configured server only: HTTPS is verified (server_trust.py) and redirects
to another scheme, host or port are refused. Answers are read up to the protocol's limits
(JSON small, files streamed to disk), so a broken or hostile server cannot fill memory or disk.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

from .bundled import protocol
from .server_trust import CertificateChanged, RedirectRefused, build_opener

DEFAULT_TIMEOUT_S = 10.0
# Downloads and job submission carry images; allow them more time than status polls.
TRANSFER_TIMEOUT_S = 120.0
COPY_CHUNK_BYTES = 1 << 16


class ServerError(RuntimeError):
    """A request failed. `code` is the server's error code, "unreachable", "unauthorized",
    "timeout" or "bad_answer"; `status` the HTTP status when there was an answer."""

    def __init__(self, message: str, *, code: str = "server_error", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class GlimpseClient:
    """Talks to one server at `base_url` with one bearer token. Safe to use from any thread.

    For an https:// URL, `ca_file` (a PEM file) or `fingerprint` (the certificate's SHA-256)
    say whom to trust instead of the system's store; ServerError "bad_settings" when they do not
    fit the URL."""

    def __init__(self, base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT_S, ca_file: str = "",
                 fingerprint: str = ""):
        self.base_url = normalize_url(base_url)
        self.token = token or ""
        self.timeout = timeout
        self.ca_file, self.fingerprint = ca_file or "", fingerprint or ""
        try:
            self._opener = build_opener(self.base_url, ca_file=self.ca_file, fingerprint=self.fingerprint)
        except ValueError as exc:
            raise ServerError(str(exc), code="bad_settings") from None

    # -- protocol -------------------------------------------------------------------------
    def health(self) -> dict:
        return self._json("GET", protocol.ROUTE_HEALTH)

    def create_job(self, image_bytes: bytes, filename: str, params: dict) -> dict:
        body = {"image_b64": base64.b64encode(image_bytes).decode("ascii"),
                "filename": filename, "params": params}
        return self._json("POST", protocol.ROUTE_JOBS, body, timeout=TRANSFER_TIMEOUT_S)

    def preview_input(self, image_bytes: bytes, params: dict) -> bytes:
        """The 256x256 PNG the model would be given: the server's own preprocessing, no model."""
        body = {"image_b64": base64.b64encode(image_bytes).decode("ascii"), "params": params}
        return self._request("POST", protocol.ROUTE_PREVIEW, json.dumps(body).encode("utf-8"),
                             limit=protocol.MAX_SET_FILE_BYTES, timeout=TRANSFER_TIMEOUT_S)

    def get_job(self, job_id: str) -> dict:
        return self._json("GET", protocol.ROUTE_JOB.format(job_id=_quote(job_id)))

    def cancel_job(self, job_id: str) -> dict:
        return self._json("POST", protocol.ROUTE_JOB_CANCEL.format(job_id=_quote(job_id)), {})

    def list_files(self, job_id: str) -> list:
        return self._json("GET", protocol.ROUTE_JOB_FILES.format(job_id=_quote(job_id))).get("files", [])

    def download_file(self, job_id: str, sample: int, name: str, dest, *, size: int | None = None) -> int:
        """Stream one file of a finished job into the file `dest`; return its size.

        `size` is the one the file list gave: a longer or shorter answer is refused. Never more
        than the protocol's limit for the file (protocol.max_answer_file_bytes). On an error
        `dest` may hold a part of the file: the caller writes into a folder it discards."""
        path = protocol.ROUTE_JOB_FILE.format(job_id=_quote(job_id), sample=int(sample), name=_quote(name))
        limit = protocol.max_answer_file_bytes(name)
        if size is not None and 0 <= int(size) <= limit:
            limit = int(size)

        def copy(response) -> int:
            self._check_length(response, limit, "GET", path)
            written = 0
            with open(dest, "wb") as out:
                while chunk := response.read(COPY_CHUNK_BYTES):
                    written += len(chunk)
                    if written > limit:
                        raise self._too_large("GET", path, limit)
                    out.write(chunk)
            if size is not None and written != int(size):
                raise ServerError(f"The server sent {written} bytes for {name} of job {job_id}, but its file list "
                                  f"says {size}. Download the set again.", code="bad_answer")
            return written

        return self._exchange("GET", path, None, timeout=TRANSFER_TIMEOUT_S, consume=copy)

    def unload_model(self) -> dict:
        return self._json("POST", protocol.ROUTE_MODEL_UNLOAD, {})

    def shutdown(self) -> None:
        self._request("POST", protocol.ROUTE_SHUTDOWN, b"{}")

    # -- plumbing -------------------------------------------------------------------------
    def _json(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        raw = self._request(method, path, data, timeout=timeout)
        try:
            return json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ServerError(
                f"The server at {self.base_url} answered {method} {path} with something that is not "
                "JSON. Check that the URL points to a Glimpse3D server.", code="bad_answer") from None

    def _request(self, method: str, path: str, data: bytes | None = None, *, limit: int = protocol.MAX_JSON_ANSWER_BYTES,
                 timeout: float | None = None) -> bytes:
        """The answer's body, at most `limit` bytes (ServerError "answer_too_large" beyond)."""

        def read(response) -> bytes:
            self._check_length(response, limit, method, path)
            raw = response.read(limit + 1)
            if len(raw) > limit:
                raise self._too_large(method, path, limit)
            return raw

        return self._exchange(method, path, data, timeout=timeout, consume=read)

    def _exchange(self, method: str, path: str, data: bytes | None, *, timeout: float | None, consume):
        """Send one request and hand the open answer to `consume`; every failure as a ServerError."""
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        timeout = self.timeout if timeout is None else timeout
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return consume(response)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path) from None
        except RedirectRefused as exc:
            raise ServerError(str(exc), code="redirect_refused") from None
        except (socket.timeout, TimeoutError):
            raise ServerError(
                f"The server at {self.base_url} did not answer {method} {path} within {timeout:g} s. "
                "It may be busy loading the model; try again, or restart it in the Glimpse3D panel.",
                code="timeout") from None
        except http.client.HTTPException as exc:  # a cut or malformed answer
            raise ServerError(f"The server at {self.base_url} sent a broken answer to {method} {path} "
                              f"({type(exc).__name__}); try again.", code="bad_answer") from None
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, CertificateChanged):
                raise ServerError(str(reason), code="certificate_changed") from None
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise ServerError(
                    f"The HTTPS certificate of {self.base_url} is not trusted ({reason.verify_message}). Pin the "
                    "SHA-256 fingerprint that the server prints beside its ready line, or choose its CA file, in "
                    "the add-on preferences.", code="untrusted_certificate") from None
            if isinstance(reason, ssl.SSLError):
                raise ServerError(
                    f"No secure connection to {self.base_url} ({reason}). Check that the server runs with HTTPS "
                    "(serve --tls-...) and the URL starts with https://, or with http:// for one without.",
                    code="tls_error") from None
            raise ServerError(
                f"Cannot reach the Glimpse3D server at {self.base_url} ({reason}). Start it in the "
                "Glimpse3D panel, or check the server URL in the add-on preferences.",
                code="unreachable") from None

    def _check_length(self, response, limit: int, method: str, path: str) -> None:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise self._too_large(method, path, limit)

    def _too_large(self, method: str, path: str, limit: int) -> ServerError:
        return ServerError(f"The server at {self.base_url} answered {method} {path} with more than {limit} bytes, "
                           "more than the protocol allows; the answer was not read further. Check that the URL "
                           "points to a Glimpse3D server.", code="answer_too_large")

    def _http_error(self, exc: urllib.error.HTTPError, method: str, path: str) -> ServerError:
        try:
            raw = exc.read(protocol.MAX_ERROR_ANSWER_BYTES)
        except (OSError, http.client.HTTPException):
            raw = b""
        code, message = _parse_error_body(raw)
        if exc.code == 429:
            retry = exc.headers.get("Retry-After", "") if exc.headers else ""
            wait = f" Try again in {retry} s." if retry.isdigit() else ""
            return ServerError((message or "The server's queue is full.") + wait,
                               code=code or protocol.ErrorCode.QUEUE_FULL, status=429)
        if exc.code == 401:
            return ServerError(
                f"The server at {self.base_url} refused the token. For a server you started "
                "yourself, copy its token into the add-on preferences (Server Token).",
                code=protocol.ErrorCode.UNAUTHORIZED, status=401)
        if message is None:
            snippet = raw[:200].decode("utf-8", "replace").strip()
            message = (f"The server answered {exc.code} {exc.reason} to {method} {path}"
                       + (f": {snippet}" if snippet else "."))
        return ServerError(message, code=code or "server_error", status=exc.code)


def _parse_error_body(raw: bytes) -> tuple[str | None, str | None]:
    """(code, message) from the protocol's `{"error": {"code", "message"}}`, or (None, None)."""
    try:
        error = json.loads(raw.decode("utf-8")).get("error")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None, None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error.get("code"), error["message"]
    if isinstance(error, str):
        return None, error
    return None, None


def _quote(part: str) -> str:
    return urllib.parse.quote(str(part), safe="")


def normalize_url(url: str) -> str:
    """'127.0.0.1:8765/' -> 'http://127.0.0.1:8765' (no trailing slash)."""
    url = (url or "").strip().rstrip("/")
    if url and "://" not in url:
        url = "http://" + url
    return url
