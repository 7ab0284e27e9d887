"""The HTTP side of the server: a FastAPI app over `ServerApp`, made by `create_app`.

    app = create_app(pipeline, token, ServerSettings(host="127.0.0.1"))
    uvicorn.run(app, ...)              # server/run.py does this for `python -m inference_server serve`

The same app can be mounted elsewhere (e.g. as a Ray Serve ingress) with another job store:
`create_app(pipeline, token, settings, jobs=MyJobStore(...))` (see jobs.JobStore).

Every route needs `Authorization: Bearer <token>`, the schema at /v1/openapi.json too (there
are no public /docs). Before the token, a request must come to the server's own address (its
`Host`, against DNS rebinding) and not from a web page (no browser `Origin`), unless the
settings allow them. Every error is `{"error": {"code", "message"}}`, FastAPI's own errors
(validation, unknown routes and methods, unreadable JSON) included. One log line per request.
"""
from __future__ import annotations

import contextlib
import hmac
import logging
import time

from fastapi import APIRouter, BackgroundTasks, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .. import protocol
from ..errors import InputError, SetupError
from ..generation.params import check_value
from ..version import __version__
from . import schemas
from .core import ServerApp, is_loopback, no_such_job
from .jobs import QueueFull, ShuttingDown
from .settings import ServerSettings

log = logging.getLogger("glimpse")
http_log = logging.getLogger("glimpse.http")
E = protocol.ErrorCode
_CONTENT_TYPES = {".png": "image/png", ".json": "application/json", ".jpg": "image/jpeg",
                  ".mp4": "video/mp4", ".gif": "image/gif", ".ply": "application/octet-stream"}
_DRAIN_LIMIT_BYTES = 1024 * protocol.MIB  # a refused body up to this size is read and dropped
_ERRORS = {status: {"model": schemas.ErrorAnswer} for status in (400, 401, 403, 404, 405, 409, 413, 415, 429, 503)}


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(pipeline, token: str, settings: ServerSettings | None = None, *, jobs=None,
               manage_lifecycle: bool = True) -> FastAPI:
    """The FastAPI app serving `pipeline` (a pipeline.Pipeline) with bearer `token`.

    `jobs`: a jobs.JobStore (default: the in-process queue and worker). With `manage_lifecycle`
    the app starts the job worker when it starts and stops it (and frees the model) when it
    stops. `app.state.server` is the ServerApp; its `shutdown_requested` event is set by
    POST /v1/shutdown, for whoever runs the app to stop it.
    """
    if not token:
        raise ValueError("the server needs a bearer token")
    settings = settings or ServerSettings()  # the defaults and GLIMPSE_* environment variables
    server = ServerApp(pipeline, settings, jobs=jobs)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if manage_lifecycle:
            server.start()
        try:
            yield
        finally:
            if manage_lifecycle and not server.stop():
                log.warning("the running job did not stop in time; exiting anyway")

    app = FastAPI(title="Glimpse3D SyncDreamer inference server", version=__version__,
                  description="One image in, sixteen consistent views out. Every route needs "
                  "`Authorization: Bearer <token>`; every error is `{\"error\": {\"code\", \"message\"}}`.",
                  openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan, redirect_slashes=False)
    app.state.server = server
    app.openapi = _protocol_schema(app)
    router = _routes(server, app)
    app.include_router(router)
    app.state.routes = router.routes  # for the Allow header of a 405
    _install_error_handlers(app)
    app.add_middleware(RequestGuard, token=token, settings=settings)
    return app


# ---- routes ---------------------------------------------------------------------------------------


def _protocol_schema(app: FastAPI):
    """app.openapi as the protocol is: errors are 400 (not FastAPI's 422) and need the token."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(name, None)
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _routes(server: ServerApp, app: FastAPI) -> APIRouter:
    router = APIRouter(responses=_ERRORS)

    @router.get(protocol.ROUTE_HEALTH, response_model=schemas.Health, summary="Version, device, model and queue")
    def health():
        return server.health()

    @router.get(protocol.ROUTE_JOBS, response_model=schemas.JobList, summary="All jobs, oldest first")
    def list_jobs():
        return {"jobs": server.jobs.list()}

    @router.post(protocol.ROUTE_JOBS, status_code=202, response_model=schemas.Job,
                 summary="Queue a job: one image in, view sets out (429 with Retry-After when the queue is full)")
    def create_job(body: schemas.JobCreate):
        raw_params = body.params.model_dump(exclude_unset=True)
        return server.create_job(body.image_b64, body.filename, raw_params)

    @router.get(protocol.ROUTE_JOB, response_model=schemas.Job, summary="One job: state, progress, outputs")
    def get_job(job_id: str):
        job = server.jobs.get(job_id)
        if job is None:
            raise no_such_job(job_id)
        return job

    @router.post(protocol.ROUTE_JOB_CANCEL, status_code=202, response_model=schemas.Job,
                 summary="Cancel a queued job, or stop the running one after its current step")
    def cancel_job(job_id: str):
        job = server.jobs.cancel(job_id)
        if job is None:
            raise no_such_job(job_id)
        return job

    @router.get(protocol.ROUTE_JOB_FILES, response_model=schemas.FileList, summary="The files of a finished job")
    def list_files(job_id: str):
        return server.list_files(job_id)

    # {name:path}: a name with (encoded) slashes reaches the check and is refused as such
    @router.get(protocol.ROUTE_JOB_FILE.replace("{name}", "{name:path}"), response_class=FileResponse, summary="One file of a finished job",
                responses={200: {"content": {"image/png": {}, "application/json": {}}}})
    def get_file(job_id: str, sample: str, name: str):
        path = server.file_path(job_id, sample, name)
        return FileResponse(path, media_type=_CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    @router.post(protocol.ROUTE_PREVIEW, response_class=Response,
                 summary="The 256x256 PNG the model would see for this image and these parameters (no model)",
                 responses={200: {"content": {"image/png": {}}}})
    def preview_input(body: schemas.PreviewCreate):
        raw_params = body.params.model_dump(exclude_unset=True)
        return Response(server.preview_input(body.image_b64, raw_params), media_type="image/png")

    @router.get(protocol.ROUTE_MODEL, response_model=schemas.ModelInfo, summary="The model and its settings")
    def get_model():
        return server.model_info()

    @router.post(protocol.ROUTE_MODEL_LOAD, response_model=schemas.ModelInfo, summary="Load the model now")
    def load_model():
        return server.load_model()

    @router.post(protocol.ROUTE_MODEL_UNLOAD, response_model=schemas.ModelInfo,
                 summary="Free the model's memory (loaded again by the next job)")
    def unload_model():
        return server.unload_model()

    @router.post(protocol.ROUTE_SHUTDOWN, status_code=202, response_model=schemas.Message,
                 summary="Cancel the jobs and stop the server")
    def shutdown(background: BackgroundTasks):
        background.add_task(server.request_shutdown)  # after the answer is sent
        return {"message": "shutting down: the running job is cancelled, then the server exits"}

    @router.get(protocol.ROUTE_OPENAPI, include_in_schema=False)
    def openapi():
        return app.openapi()

    return router


# ---- errors -----------------------------------------------------------------------------------------


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InputError)
    async def input_error(request, exc: InputError):
        return error_response(exc.http_status, exc.code, exc.message)

    @app.exception_handler(SetupError)
    async def setup_error(request, exc: SetupError):
        return error_response(503, exc.code, exc.message)

    @app.exception_handler(ShuttingDown)
    async def shutting_down(request, exc: ShuttingDown):
        return error_response(503, exc.code, str(exc))

    @app.exception_handler(QueueFull)
    async def queue_full(request, exc: QueueFull):
        return error_response(429, exc.code, str(exc), {"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        code, message = describe_validation_error(exc.errors())
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        method, path = request.method, request.url.path
        if exc.status_code == 404:
            return error_response(404, E.NOT_FOUND, f"no route {method} {path}; the routes all start with "
                                  f"{protocol.API_PREFIX}/ and are listed at {protocol.ROUTE_OPENAPI}")
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            return error_response(405, E.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}; use "
                                  f"{' or '.join(allowed)}", {"Allow": ", ".join(allowed)})
        if exc.status_code == 400:  # FastAPI could not read the body as JSON
            cause = exc.__cause__
            reason = f" ({type(cause).__name__}: {cause})" if cause else ""
            return error_response(400, E.BAD_JSON, "the body cannot be read as JSON: it is nested too deeply or "
                                  f"holds a number too long{reason}; send a plain JSON object")
        return error_response(exc.status_code, E.BAD_REQUEST, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request, exc: Exception):
        log.exception("internal error in %s %s", request.method, request.url.path)
        return error_response(500, E.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}. The server log has the "
                              "details; please report it.")


def _allowed_methods(request) -> list:
    """Every method some route takes on this path (Starlette names only the first route's)."""
    methods = set()
    for route in request.app.state.routes:
        match, _ = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def describe_validation_error(errors) -> tuple:
    """(code, message) for the first of pydantic's errors, in the protocol's words."""
    error = errors[0]
    kind, loc, given = error.get("type", ""), tuple(error.get("loc", ())), error.get("input")
    fields = loc[1:] if loc[:1] == ("body",) else loc
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return E.BAD_JSON, f"the body is not valid JSON ({reason}); send a JSON object"
    if not fields:
        if kind == "missing":
            return E.MISSING_IMAGE, "the request body is empty; send a JSON object with the image in 'image_b64'"
        return E.BAD_JSON, f"the body must be a JSON object, got {type(given).__name__}"
    top = fields[0]
    if len(fields) == 1 and kind == "extra_forbidden":
        return E.UNKNOWN_FIELD, (f"unknown field '{top}'; the body takes image_b64, filename (jobs only) and "
                                 "params")
    if top == "image_b64":
        if kind == "missing":
            return E.MISSING_IMAGE, "the request has no image: send it base64-encoded in 'image_b64'"
        return E.BAD_BASE64, "'image_b64' must be a base64 text"
    if top == "filename":
        return E.BAD_FILENAME, f"'filename' must be a text of at most {protocol.MAX_FILENAME_CHARS} characters"
    if top == "params":
        if len(fields) == 1:
            return E.BAD_PARAMETER, f"'params' must be a JSON object, got {type(given).__name__}"
        name = fields[1]
        if kind == "extra_forbidden":
            known = ", ".join((*protocol.PARAM_NAMES, *protocol.JOB_OPTION_NAMES, protocol.OUTPUT_DIR_PARAM))
            return E.UNKNOWN_PARAMETER, f"unknown parameter(s): {name}; the known ones are: {known}"
        spec = protocol.PARAM_SPECS.get(name) or protocol.JOB_OPTION_SPECS.get(name)
        if spec is not None:
            try:
                check_value(spec, given)
            except InputError as refused:
                return E.BAD_PARAMETER, refused.message
        return E.BAD_PARAMETER, f"'{name}': {error.get('msg', 'not accepted')}, got {given!r}"
    return E.BAD_JSON, f"{'.'.join(map(str, fields))}: {error.get('msg', 'not accepted')}"


# ---- the guard in front of every route -------------------------------------------------------------


def _host_name(host_header: str) -> str:
    """The name in a Host header, without the port ("[::1]:80" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    if host_header.count(":") == 1:
        return host_header.split(":", 1)[0]
    return host_header


class RequestGuard:
    """Pure ASGI middleware: Host and Origin, the token, the body limit, and the log line.

    A body is read here once (up to the limit) and handed on, so an oversized one is refused
    with 413 whether it declares its length or not.
    """

    def __init__(self, app, token: str, settings: ServerSettings):
        self.app = app
        self.token = token.encode("utf-8")
        self.max_body = int(settings.max_body_bytes)
        self.any_host = "*" in settings.allowed_hosts or settings.host in ("", "0.0.0.0", "::")
        self.loopback = is_loopback(settings.host)
        self.hosts = {name.lower().strip("[]") for name in (settings.host, *settings.allowed_hosts)}
        self.origins = set(settings.allowed_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"cache-control", b"no-store")]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await self._drain(scope, receive)
                await refusal(scope, receive, send_logged)
                return
            body = await self._read_body(scope, receive)
            if isinstance(body, Response):
                await body(scope, receive, send_logged)
                return
            await self.app(scope, _replay(body, receive), send_logged)
        finally:
            self._log(scope, status["code"], time.perf_counter() - started)

    def _refusal(self, scope):
        headers = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        host = headers.get("host")
        if host is not None and not self._host_allowed(_host_name(host.strip()).lower()):
            return error_response(403, E.FORBIDDEN_HOST, f"this server does not answer to the host name "
                                  f"{host!r} (a web page may be trying to reach it through DNS rebinding). "
                                  "Use the address the server printed, or start it with --allow-host NAME")
        origin = headers.get("origin")
        if origin is not None and "*" not in self.origins and origin not in self.origins:
            return error_response(403, E.FORBIDDEN_ORIGIN, f"requests from web pages (Origin {origin!r}) are "
                                  "refused; start the server with --allow-origin ORIGIN to allow that page")
        given = headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode("utf-8", "replace"), self.token):
            what = "has a wrong token" if given else "has no 'Authorization: Bearer <token>' header"
            return error_response(401, E.UNAUTHORIZED, f"the request {what}; use the token from "
                                  f"{protocol.TOKEN_ENV} (or the one the server printed at start)",
                                  {"WWW-Authenticate": "Bearer"})
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return self._too_large(int(length))
        return None

    def _host_allowed(self, name: str) -> bool:
        if self.any_host or name in self.hosts:
            return True
        return self.loopback and is_loopback(name)

    def _too_large(self, length) -> JSONResponse:
        limit_mb = self.max_body / protocol.MIB
        image_mb = protocol.max_image_bytes(self.max_body) / protocol.MIB
        return error_response(413, E.BODY_TOO_LARGE, f"the request body has {length} bytes, more than the limit "
                              f"of {limit_mb:g} MB (image files up to {image_mb:.1f} MB, as base64 makes them "
                              "4/3 larger); send a smaller image (SyncDreamer works at 256x256 anyway)",
                              {"Connection": "close"})

    async def _drain(self, scope, receive):
        """Read and drop the body of a refused request (up to a sane size), so that the client
        gets to read the answer instead of a broken pipe. Not with Expect: 100-continue: such
        a client waits for our answer before it sends the body."""
        if scope["method"] in ("GET", "HEAD") or any(name.lower() == b"expect" for name, _ in scope["headers"]):
            return
        length = dict((name.lower(), value) for name, value in scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > _DRAIN_LIMIT_BYTES:
            return
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    async def _read_body(self, scope, receive):
        """The whole body (bytes), or the 413 answer when it exceeds the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._drain(scope, receive)
                return self._too_large(f"more than {size}")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    def _log(scope, status: int, seconds: float) -> None:
        client = scope.get("client") or ("-", 0)
        line = f"{client[0]} {scope['method']} {scope['path']} {status} {seconds * 1000:.1f} ms"
        if status >= 500:
            http_log.error(line)
        elif status >= 400:
            http_log.warning(line)
        else:
            http_log.debug(line)


def _replay(body: bytes, receive):
    """A `receive` that hands out `body` once, then waits for the client's disconnect."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
