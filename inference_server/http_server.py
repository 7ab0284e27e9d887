"""The HTTP side of the server (standard library only): routing, the bearer token, JSON in and out.

Every request needs `Authorization: Bearer <token>`; errors are JSON
`{"error": {"code": ..., "message": ...}}`. The routes are documented in the README (The inference server, Protocol);
what they do is in server_app.py.
"""
import hmac
import json
import re
import signal
import socket
import sys
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import InputError, SetupError
from .jobs import ShuttingDown
from .server_app import no_such_job
from .version import __version__

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
_DRAIN_LIMIT_BYTES = 1024 * 1024 * 1024  # a refused body up to this size is read and dropped
READY_PREFIX = "GLIMPSE_SERVER_READY"
_CONTENT_TYPES = {".png": "image/png", ".json": "application/json", ".jpg": "image/jpeg",
                  ".mp4": "video/mp4", ".gif": "image/gif"}

# (method, path pattern, name of the ServerHandler method that answers)
ROUTES = [
    ("GET", r"/v1/health", "get_health"),
    ("GET", r"/v1/jobs", "list_jobs"),
    ("POST", r"/v1/jobs", "create_job"),
    ("GET", r"/v1/jobs/(?P<job_id>[^/]+)", "get_job"),
    ("POST", r"/v1/jobs/(?P<job_id>[^/]+)/cancel", "cancel_job"),
    ("GET", r"/v1/jobs/(?P<job_id>[^/]+)/files", "list_files"),
    ("GET", r"/v1/jobs/(?P<job_id>[^/]+)/files/(?P<sample>[^/]+)/(?P<name>[^/]+)", "get_file"),
    ("POST", r"/v1/preview", "preview_input"),
    ("GET", r"/v1/model", "get_model"),
    ("POST", r"/v1/model/load", "load_model"),
    ("POST", r"/v1/model/unload", "unload_model"),
    ("POST", r"/v1/shutdown", "shutdown"),
]
_COMPILED = [(method, re.compile(pattern + r"/?\Z"), name) for method, pattern, name in ROUTES]


class ApiError(Exception):
    """An answer other than 2xx that is not about the input (401, 404 route, 405, 411, 413)."""

    def __init__(self, status: int, code: str, message: str, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class GlimpseHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client connection must not keep the process alive
    allow_reuse_address = True

    def __init__(self, address, app, token: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 verbose: bool = False):
        self.app = app
        self.token = token.encode("utf-8")
        self.max_body_bytes = max_body_bytes
        self.verbose = verbose
        super().__init__(address, ServerHandler)


class ServerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"GlimpseSyncDreamer/{__version__}"
    timeout = 120  # seconds a client may take to send its request

    # --- plumbing --------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def _dispatch(self, method: str):
        app = self.server.app
        try:
            self._check_token()
            path = urllib.parse.urlsplit(self.path).path
            handler, groups = self._route(method, path)
            status, answer = getattr(self, handler)(app, **groups)
            if isinstance(answer, (bytes, bytearray)):
                self._send(status, bytes(answer), self._content_type)
            else:
                self._send_json(status, answer)
            if self._after_response is not None:
                self._after_response()
        except ApiError as exc:
            self._send_error(exc.status, exc.code, exc.message, exc.headers)
        except InputError as exc:
            self._send_error(exc.http_status, exc.code, exc.message)
        except SetupError as exc:
            self._send_error(503, exc.code, exc.message)
        except ShuttingDown as exc:
            self._send_error(503, exc.code, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug must not take the server down
            traceback.print_exc()
            self._send_error(500, "internal_error", f"{type(exc).__name__}: {exc}. The server log "
                             "has the details; please report it.")

    def _check_token(self):
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), self.server.token):
            self.close_connection = True  # the body was not read; do not reuse the connection
            what = "has a wrong token" if header else "has no 'Authorization: Bearer <token>' header"
            raise ApiError(401, "unauthorized", f"the request {what}; use the token from "
                           "GLIMPSE_SERVER_TOKEN (or the one the server printed at start)",
                           {"WWW-Authenticate": "Bearer"})

    def _route(self, method: str, path: str):
        allowed = []
        for route_method, pattern, name in _COMPILED:
            match = pattern.match(path)
            if match:
                if route_method == method:
                    return name, {key: urllib.parse.unquote(value) for key, value in match.groupdict().items()}
                allowed.append(route_method)
        if allowed:
            self._discard_body()
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}; use "
                           f"{' or '.join(sorted(set(allowed)))}", {"Allow": ", ".join(sorted(set(allowed)))})
        self._discard_body()
        raise ApiError(404, "not_found", f"no route {method} {path}; see the routes in the README "
                       "(they all start with /v1/)")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise ApiError(411, "length_required", "send the body with a Content-Length header "
                           "(chunked transfer is not supported)")
        length_text = self.headers.get("Content-Length", "0") or "0"
        if not length_text.isdigit():
            self.close_connection = True
            raise ApiError(400, "bad_request", f"bad Content-Length {length_text!r}")
        length = int(length_text)
        if length > self.server.max_body_bytes:
            self._drain(length)
            raise self._too_large(length)
        return self.rfile.read(length) if length else b""

    def _too_large(self, length: int) -> ApiError:
        limit_mb = self.server.max_body_bytes / (1024 * 1024)
        return ApiError(413, "body_too_large", f"the request body has {length} bytes, more than the "
                        f"limit of {limit_mb:g} MB; send a smaller image (SyncDreamer works at 256x256 "
                        "anyway)")

    def _drain(self, length: int):
        """Read and drop a refused body, so that the client gets to read our answer.

        Beyond a sane size the connection is just closed (the client then sees a broken pipe).
        """
        self.close_connection = True
        if length > _DRAIN_LIMIT_BYTES:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def handle_expect_100(self):
        """`Expect: 100-continue` (curl does that for large bodies): refuse before the body comes."""
        length_text = self.headers.get("Content-Length", "0") or "0"
        if length_text.isdigit() and int(length_text) > self.server.max_body_bytes:
            self.close_connection = True
            error = self._too_large(int(length_text))
            self._send_error(error.status, error.code, error.message)
            return False
        return super().handle_expect_100()

    def _discard_body(self):
        length_text = self.headers.get("Content-Length", "0") or "0"
        if length_text.isdigit() and 0 < int(length_text) <= self.server.max_body_bytes:
            self.rfile.read(int(length_text))
        elif length_text != "0":
            self.close_connection = True

    def _read_json(self):
        body = self._read_body()
        if not body.strip():
            return None
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"the body is not valid JSON ({exc})", code="bad_json") from None

    def _send_json(self, status: int, answer):
        self._send(status, json.dumps(answer).encode("utf-8"), "application/json; charset=utf-8")

    def _send_error(self, status: int, code: str, message: str, headers=None):
        body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_request(self, code="-", size="-"):
        if self.server.verbose or (isinstance(code, int) and code >= 400):
            super().log_request(code, size)

    def log_message(self, format, *args):
        sys.stderr.write(f"glimpse http: {self.address_string()} {format % args}\n")

    # --- routes ----------------------------------------------------------------------------

    _content_type = "application/octet-stream"
    _after_response = None  # set by a route that must act only once its answer is sent

    def get_health(self, app):
        return 200, app.health()

    def list_jobs(self, app):
        return 200, {"jobs": app.jobs.list()}

    def create_job(self, app):
        body = self._read_json()
        if body is None:
            raise InputError("the request body is empty; send {\"image_b64\": ..., \"params\": {...}}",
                             code="missing_image")
        return 202, app.create_job(body)

    def preview_input(self, app):
        body = self._read_json()
        if body is None:
            raise InputError("the request body is empty; send {\"image_b64\": ..., \"params\": {...}}",
                             code="missing_image")
        self._content_type = "image/png"
        return 200, app.preview_input(body)

    def get_job(self, app, job_id):
        job = app.jobs.get(job_id)
        if job is None:
            raise no_such_job(job_id)
        return 200, job

    def cancel_job(self, app, job_id):
        self._discard_body()
        job = app.jobs.cancel(job_id)
        if job is None:
            raise no_such_job(job_id)
        return 202, job

    def list_files(self, app, job_id):
        return 200, app.list_files(job_id)

    def get_file(self, app, job_id, sample, name):
        path = app.file_path(job_id, sample, name)
        self._content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return 200, path.read_bytes()

    def get_model(self, app):
        return 200, app.model_info()

    def load_model(self, app):
        self._discard_body()
        return 200, app.load_model()

    def unload_model(self, app):
        self._discard_body()
        return 200, app.unload_model()

    def shutdown(self, app):
        self._discard_body()
        self.close_connection = True
        # answer first, then stop: the main thread (serve) waits for this flag
        self._after_response = app.request_shutdown
        return 202, {"message": "shutting down: the running job is cancelled, then the server exits"}


def ready_line(port: int, url: str, pid: int) -> str:
    info = {"port": port, "url": url, "pid": pid, "version": __version__}
    return f"{READY_PREFIX} {json.dumps(info)}"


def serve(app, host: str, port: int, token: str, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          verbose: bool = False, on_ready=None) -> int:
    """Serve until POST /v1/shutdown, SIGTERM or Ctrl+C; then stop cleanly and return 0.

    `on_ready(port, url)` is called once the socket listens and the worker runs.
    """
    httpd = _make_server(host, port, app, token, max_body_bytes, verbose)
    port = httpd.server_address[1]
    url = f"http://{_url_host(host)}:{port}"
    app.start()
    server_thread = threading.Thread(target=httpd.serve_forever, name="glimpse-http", daemon=True)
    server_thread.start()
    previous = _install_signal_handlers(app.request_shutdown)
    try:
        if on_ready is not None:
            on_ready(port, url)
        while not app.shutdown_requested.wait(0.5):
            pass
        print("glimpse: shutting down", file=sys.stderr, flush=True)
    finally:
        httpd.shutdown()  # no new requests
        stopped = app.stop()
        httpd.server_close()
        _restore_signal_handlers(previous)
    if not stopped:
        print("glimpse: the running job did not stop in time; exiting anyway", file=sys.stderr, flush=True)
    return 0


def _make_server(host, port, app, token, max_body_bytes, verbose):
    server_class = GlimpseHTTPServer
    if ":" in host:  # an IPv6 address
        server_class = type("GlimpseHTTPServer6", (GlimpseHTTPServer,), {"address_family": socket.AF_INET6})
    try:
        return server_class((host, port), app, token, max_body_bytes, verbose)
    except OSError as exc:
        raise SetupError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
                         "--port, or 0 for any free one") from None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _install_signal_handlers(callback):
    """Ctrl+C and SIGTERM ask for a clean shutdown (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGINT", "SIGTERM"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, lambda *_: callback())
    return previous


def _restore_signal_handlers(previous):
    for number, handler in previous.items():
        signal.signal(number, handler)
