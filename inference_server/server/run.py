"""`python -m inference_server serve`: the app of server/app.py on uvicorn, until told to stop.

Prints the ready line (protocol.format_ready_line) on stdout once the socket accepts
requests; with TLS (tls.py) it serves HTTPS and the ready line carries the certificate's
SHA-256 fingerprint. Stops cleanly on POST /v1/shutdown, SIGINT/SIGTERM, when the process `parent_pid`
ends, or (with `exit_with_stdin`) when stdin is closed, e.g. because Blender died.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import threading

import uvicorn

from .. import protocol
from ..errors import SetupError
from ..process_watch import watch_parent, watch_stdin
from ..version import __version__
from .app import create_app
from .settings import ServerSettings
from .tls import TLSFiles

log = logging.getLogger("glimpse")
GRACEFUL_SHUTDOWN_S = 5  # open connections get this long after a stop was asked for


def configure_logging(verbose: bool = False) -> None:
    """`glimpse: message` lines on stderr; request lines of 2xx only with `verbose`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for name in ("glimpse", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.getLogger("glimpse.http").setLevel(logging.DEBUG if verbose else logging.INFO)


def url_host(host: str) -> str:
    """The host part of the URL that reaches a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SetupError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another "
                         "--port, or 0 for any free one") from None
    sock.listen(128)
    return sock


def serve(pipeline, token: str, settings: ServerSettings, port: int, *, verbose: bool = False,
          parent_pid: int | None = None, exit_with_stdin: bool = False, on_ready=None,
          tls: TLSFiles | None = None) -> int:
    """Serve until asked to stop; then cancel the jobs, free the model and return 0.

    `on_ready(port, url)` is called once the socket accepts requests (after the ready line).
    """
    configure_logging(verbose)
    sock = bind(settings.host, port)
    port = sock.getsockname()[1]
    url = f"{'https' if tls else 'http'}://{url_host(settings.host)}:{port}"
    app = create_app(pipeline, token, settings)
    ssl_files = dict(ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)) if tls else {}
    config = uvicorn.Config(app, http="h11", lifespan="on", log_config=None, access_log=False,
                            proxy_headers=False, server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                            ws="none", **ssl_files)
    server = uvicorn.Server(config)
    stop_asked = app.state.server.shutdown_requested

    def stop(*_):
        stop_asked.set()

    def watch():
        while not server.started and not server.should_exit:
            if stop_asked.wait(0.05):
                break
        if server.started and not stop_asked.is_set():
            fingerprint = tls.fingerprint if tls else ""
            if tls:
                log.info("HTTPS certificate %s, SHA-256 fingerprint %s (pin it in the add-on's preferences)",
                         tls.cert, fingerprint)
            print(protocol.format_ready_line(port, url, os.getpid(), __version__, tls_fingerprint=fingerprint),
                  flush=True)
            if on_ready is not None:
                on_ready(port, url)
        stop_asked.wait()
        log.info("shutting down")
        server.should_exit = True

    if parent_pid:
        watch_parent(parent_pid, stop)
    if exit_with_stdin:
        watch_stdin(stop)
    threading.Thread(target=watch, name="glimpse-ready", daemon=True).start()
    try:
        server.run(sockets=[sock])  # SIGINT/SIGTERM make it return too
    finally:
        stop_asked.set()
        sock.close()
    return 0
