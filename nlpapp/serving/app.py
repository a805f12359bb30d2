"""The FastAPI application: routes, limits, keys, metrics and the model thread's lifetime.
FastAPI caps the body (``max_body_size``: 413), validates requests (422) and writes the
OpenAPI document (``/openapi.json``).

Models load on the model thread after the server starts listening: ``/health`` answers at
once, ``/ready`` is 503 until every served model and adapter is loaded (and stays 503,
with the reason, if one fails; ``nlpapp serve`` then exits 1)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from prometheus_client import CONTENT_TYPE_LATEST

from .. import __version__, log
from ..errors import NlpappError
from .catalog import Catalog
from .config import ServeConfig
from .openai_routes import openai_router
from .problems import Problem, from_exception
from .state import ServerState
from .task_routes import task_router

if TYPE_CHECKING:
    from ..api import Runtime

def create_app(runtime: "Runtime", config: ServeConfig,
               on_load_failed: Callable[[str], None] | None = None) -> FastAPI:
    """The application serving ``runtime``'s tasks and ``config``'s models. Adapter manifests
    are read now (``NlpappError`` for a missing one); models load once it starts."""
    state = ServerState(config, Catalog(runtime, config.models, config.adapters))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        state.batcher.start()

        async def load() -> None:
            await state.load()
            if state.load_error and on_load_failed is not None:
                on_load_failed(state.load_error)
            elif state.load_error:
                log.info(f"error: could not load the models: {state.load_error}")

        loading = asyncio.create_task(load())
        try:
            yield
        finally:
            loading.cancel()
            await asyncio.get_running_loop().run_in_executor(None, state.stop)

    app = FastAPI(title="nlpapp", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  max_body_size=config.max_body_bytes,  # Starlette's RequestBodyLimitMiddleware: 413 beyond
                  strict_content_type=False,  # a JSON body without a Content-Type header is read as JSON
                  description="Every nlpapp task over HTTP, and OpenAI-compatible generation and embeddings.")
    app.state.nlpapp = state

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own answers (no such route 404, wrong method 405) in the same shape."""
        kind = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 413:
            message += f" (at most {config.max_body_bytes:,} bytes, --max-body-bytes)"
        return JSONResponse(Problem(exc.status_code, message, code=kind).body(), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = _most_telling(exc.errors())
        where = ".".join(str(p) for p in first["loc"][1:] if not _is_union_branch(p)) or "body"
        message = f"{where}: {first['msg']}"
        if first["type"] == "json_invalid":
            where, message = "body", f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
        sent = request.headers.get("content-type", "")
        if sent and "json" not in sent:
            message = (f"the body must be JSON, sent as Content-Type: application/json (got {sent}); "
                       "with curl: curl --json '{...}' URL, or -H 'Content-Type: application/json'")
        body = Problem(422, message, param=where, code="invalid_request").body()
        return JSONResponse({**body, "detail": _plain(exc.errors())}, 422)

    # NlpappError's handler runs in Starlette's ExceptionMiddleware and ends there; the handler
    # for Exception runs in ServerErrorMiddleware, which logs the traceback and re-raises: a bug
    @app.exception_handler(NlpappError)
    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        answer = from_exception(exc)
        return JSONResponse(answer.body(), answer.status, headers=answer.headers)

    @app.get("/health", tags=["probes"], summary="Live: the process answers")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"], summary="Ready: every served model is loaded (503 until then)")
    def ready() -> JSONResponse:
        if state.ready:
            return JSONResponse({"status": "ready", "models": list(state.catalog.entries)})
        status = "failed" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, 503, headers={"Retry-After": "1"})

    @app.get("/metrics", tags=["probes"], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def playground() -> HTMLResponse:
        return HTMLResponse(resources.files(__package__).joinpath("playground.html").read_text("utf-8"))

    tasks = sorted(runtime.registries.tasks, key=lambda t: t.name)
    app.include_router(openai_router(state))
    app.include_router(task_router(state, tasks))
    app.add_middleware(FormAsJson)
    if config.api_key:
        app.add_middleware(KeyCheck, api_key=config.api_key)
    app.add_middleware(RequestMetrics, telemetry=state.telemetry)
    return app


def _is_union_branch(part: Any) -> bool:
    """pydantic names the branch of a union it tried in the location (``str``, ``SummarizationInput``)."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or part[:1].isupper())


def _most_telling(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to name: a record's own field (a missing ``context``) rather than "should be
    a string", which pydantic reports first for a record input that may also be a text."""
    records = [e for e in errors if not any(part in ("str", "list[str]") for part in e["loc"])]
    return (records or errors)[0]


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors without what JSON cannot hold (the exception in ``ctx``)."""
    return [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]


class KeyCheck:
    """ASGI middleware: with an API key, every path but the probes (``/health``, ``/ready``)
    and the page itself (``/``) needs ``Authorization: Bearer KEY``; checked before the body
    is read or a route is matched, so a client without the key learns nothing else (401)."""

    OPEN = frozenset({"/", "/health", "/ready"})

    def __init__(self, app: Any, api_key: str):
        self.app, self.key = app, api_key.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"] not in self.OPEN:
            given = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = given.partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(token, self.key):
                answer = Problem(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
                                 "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
                await JSONResponse(answer.body(), 401, headers=answer.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class FormAsJson:
    """ASGI middleware: a POST sent as a form (``curl -d '{...}'`` sends
    ``application/x-www-form-urlencoded``) is read as the JSON it holds; no route takes forms."""

    FORM = b"application/x-www-form-urlencoded"

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            # in place: the outer middleware reads the route FastAPI records in this same scope
            scope["headers"] = [(k, b"application/json" if k == b"content-type" and v == self.FORM else v)
                                for k, v in scope["headers"]]
        await self.app(scope, receive, send)


class RequestMetrics:
    """ASGI middleware: every request's route, status and seconds go to the metrics (the route
    as declared, ``/v1/tasks/{name}`` not the path asked, so labels stay few)."""

    def __init__(self, app: Any, telemetry: Any):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            self.telemetry.requests.labels(path, str(status[0])).inc()
            self.telemetry.latency.labels(path).observe(time.perf_counter() - started)
