"""`python -m inference_server serve`: the local inference server (HTTP) for Blender, or Ray Serve with --ray."""
import logging
import os
import secrets
from pathlib import Path

from .. import protocol
from ..cluster.options import add_ray_options, ray_requested
from ..errors import InputError
from ..generation.checkpoints import cache_dir
from ..server.settings import ServerSettings, settings_from
from ..server.tls import add_tls_options, clear_text_warning, tls_files_from_args
from .options import add_model_options, make_service, service_options

# ServerSettings field -> the flag that sets it
SETTING_FLAGS = {"host": "--host", "output_root": "--output-root", "idle_unload_s": "--idle-unload",
                 "max_body_mb": "--max-body-mb", "max_queue": "--max-queue",
                 "preview_concurrency": "--preview-concurrency", "allowed_hosts": "--allow-host",
                 "allowed_origins": "--allow-origin"}


def add_parser(commands) -> None:
    serve = commands.add_parser("serve", help="run the local inference server (HTTP) for Blender",
                                description="Run the inference server. The bearer token comes from the "
                                f"environment variable {protocol.TOKEN_ENV}; without it one is made and printed.")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--idle-unload", type=float, default=None, metavar="SECONDS",
                       help="unload the model after this many idle seconds (default 0: never)")
    serve.add_argument("--preload", action="store_true", help="load the model before reporting ready")
    serve.add_argument("--output-root", type=Path, default=None, metavar="DIR",
                       help="where job outputs go when a job names no output_dir "
                            "(default ~/.cache/glimpse3d/outputs)")
    serve.add_argument("--max-body-mb", type=float, default=None, metavar="MB",
                       help=f"largest request body accepted (default {protocol.DEFAULT_MAX_BODY_MB:g}; image files "
                            "may be about 3/4 of it, as base64 makes them 4/3 larger)")
    serve.add_argument("--max-queue", type=int, default=None, metavar="N",
                       help=f"jobs that may wait; beyond them a job is answered 429 with Retry-After "
                            f"(default {protocol.DEFAULT_MAX_QUEUE})")
    serve.add_argument("--preview-concurrency", type=int, default=None,
                       metavar="N", help="images decoded at once for previews and job checks (default "
                                         f"{protocol.DEFAULT_PREVIEW_CONCURRENCY})")
    serve.add_argument("--allow-host", action="append", default=None, metavar="NAME",
                       help="also answer requests addressed to this host name (repeatable; '*' any). By default "
                            "only the address the server listens on, against DNS rebinding")
    serve.add_argument("--allow-origin", action="append", default=None, metavar="ORIGIN",
                       help="accept requests from this web page origin, e.g. http://localhost:3000 "
                            "(repeatable; '*' any). By default requests from browsers are refused")
    serve.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                       help="exit within a few seconds once the process PID has ended (the add-on passes "
                            "Blender's)")
    serve.add_argument("--exit-with-stdin", action="store_true",
                       help="exit when stdin is closed (for a parent that holds a pipe to it)")
    serve.add_argument("--verbose", action="store_true", help="log every request, not only refused ones")
    add_tls_options(serve)
    add_model_options(serve)
    add_ray_options(serve, serve=True)


def settings_from_args(args) -> ServerSettings:
    """The server settings of the flags given; the others from GLIMPSE_* variables or the defaults."""
    given = {"host": args.host, "output_root": args.output_root, "idle_unload_s": args.idle_unload,
             "max_body_mb": args.max_body_mb, "max_queue": args.max_queue,
             "preview_concurrency": args.preview_concurrency,
             "allowed_hosts": tuple(args.allow_host) if args.allow_host else None,
             "allowed_origins": tuple(args.allow_origin) if args.allow_origin else None}
    return settings_from(ServerSettings, {name: value for name, value in given.items() if value is not None},
                         spell=lambda name: SETTING_FLAGS.get(name, name))


def run(args) -> int:
    from ..generation.pipeline import Pipeline
    from ..server.core import is_loopback
    from ..server.run import configure_logging, serve

    settings = settings_from_args(args)
    configure_logging(args.verbose)
    log = logging.getLogger("glimpse")
    token = os.environ.get(protocol.TOKEN_ENV, "").strip()
    if not token:
        token = secrets.token_urlsafe(24)
        log.warning("%s is not set; this server's token is: %s", protocol.TOKEN_ENV, token)
    tls = tls_files_from_args(args, cache_dir(), settings.host)
    if not is_loopback(settings.host):
        log.warning("listening on %s: other machines can reach this server; anyone with the token can run jobs "
                    "on this GPU. output_dir is refused; files are served over HTTP only.", settings.host)
        if tls is None:
            log.warning("%s", clear_text_warning(settings.host))
    if ray_requested(args) and tls is not None:
        raise InputError("HTTPS (--tls-*) is served by the plain server, not yet with --ray: leave out --ray, or "
                         "put a TLS-terminating proxy in front of the Ray server", code=protocol.ErrorCode.BAD_PARAMETER)
    if ray_requested(args):  # Ray Serve instead of uvicorn: cluster/serve_ray.py
        from ..cluster.serve_ray import serve_on_ray

        return serve_on_ray(args, token, settings, service_options(args))
    service = make_service(args)
    if args.preload:
        log.info("loading the model ...")
        service.load_model()

    def announce(port, url):
        info = service.info()
        mode = "low-memory mode, " if info["low_memory"] else ""
        log.info("serving on %s (device %s, precision %s, %s%d views per UNet call by default); outputs in %s",
                 url, info["device"], info["precision"], mode, info["auto_batch_views"],
                 Path(settings.output_root).expanduser().resolve())

    return serve(Pipeline(service), token, settings, args.port, verbose=args.verbose, parent_pid=args.parent_pid,
                 exit_with_stdin=args.exit_with_stdin, on_ready=announce, tls=tls)
