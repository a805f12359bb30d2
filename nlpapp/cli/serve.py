"""``nlpapp serve``: the runtime behind HTTP (``nlpapp.serving``), served by uvicorn.

This module imports click only: FastAPI, uvicorn and torch load when the command runs, so
``nlpapp serve --help`` stays fast."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import click

from ..errors import NlpappError
from .common import DTYPES, load_settings, trust_options
from .state import state

SERVE_EXTRA = "pip install 'nlpapp[serve]' (FastAPI, uvicorn, sse-starlette, prometheus-client)"


def _adapter(value: str) -> tuple[str, str]:
    """``NAME=PATH``, or a remembered adapter's name (``nlpapp adapters list``)."""
    name, sep, where = value.partition("=")
    if not name or (sep and not where):
        raise click.BadParameter(f"{value!r}: give NAME=PATH or the name of a trained adapter")
    return name, where if sep else name


@click.command(context_settings={"show_default": True})
@click.option("--model", "models", multiple=True, metavar="MODEL",
              help="A model to serve (a registered name, folder, .gguf file or hub id); repeat for more.")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=PATH",
              help="An adapter to serve under NAME (its base model is served too); repeat for more.")
@click.option("--host", default="127.0.0.1", help="Address to bind; another than loopback needs --api-key.")
@click.option("--port", default=8000, type=int, help="Port to bind (0: any free port).")
@click.option("--api-key", envvar="NLPAPP_API_KEY", metavar="KEY",
              help="Require 'Authorization: Bearer KEY' (also read from NLPAPP_API_KEY).")
@click.option("--batch-size", default=32, type=int, help="Most inputs per model batch, from all requests.")
@click.option("--batch-wait-ms", default=5.0, type=float,
              help="How long an idle model waits for a batch to fill before running it.")
@click.option("--max-requests", default=256, type=int, help="Requests in flight at once; more get 429.")
@click.option("--max-queued-tokens", default=1_000_000, type=int,
              help="Estimated tokens in flight at once; more get 429.")
@click.option("--max-tokens", default=1024, type=int, help="Most new tokens one request may ask for.")
@click.option("--max-n", default=8, type=int, help="Most choices (n) one request may ask for.")
@click.option("--max-inputs", default=256, type=int, help="Most inputs in one task or embeddings request.")
@click.option("--request-timeout", default=120.0, type=float, help="Seconds before an unanswered request gets 504.")
@click.option("--max-body-bytes", default=4 * 1024 * 1024, type=int, help="Larger request bodies get 413.")
@click.option("--drain-timeout", default=30.0, type=float,
              help="On SIGTERM or Ctrl-C, seconds in-flight requests may take to finish.")
@click.option("--continuous-batching", is_flag=True,
              help="Generate through transformers' continuous batching (requests join the running batch) "
                   "where it decodes alike: greedy, no repetition penalty (then the chat default), no adapter.")
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", type=click.Choice(DTYPES))
@click.option("--backend", default="auto", metavar="NAME",
              help="What runs the models: torch (auto), or a plugin's backend such as llamacpp for .gguf models.")
@click.option("--log-level", default="warning", type=click.Choice(["debug", "info", "warning", "error"]),
              help="uvicorn's log level (info logs every request).")
@click.option("--json", "as_json", is_flag=True, help="Print the address as one JSON line once listening (with --port 0, the port chosen).")
def serve(models: tuple[str, ...], adapters: tuple[str, ...], **kw: Any) -> None:
    """Serve every task over HTTP, with OpenAI-compatible routes.

    \b
    nlpapp serve --model smollm2 --adapter headlines=adapters/headlines --port 8000
    curl localhost:8000/v1/tasks/summarization -d '{"inputs": ["..."], "adapter": "headlines"}'
    curl localhost:8000/v1/chat/completions -d '{"model": "smollm2", "messages": [...]}'

    Routes: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, /v1/tasks,
    /v1/tasks/TASK, /health, /ready, /metrics, /openapi.json, and a playground page at /."""
    from ..serving.config import ServeConfig

    config = ServeConfig(
        models=models, adapters=tuple(_adapter(a) for a in adapters), host=kw["host"], port=kw["port"],
        api_key=kw["api_key"], batch_size=kw["batch_size"], batch_wait_ms=kw["batch_wait_ms"],
        max_requests=kw["max_requests"], max_queued_tokens=kw["max_queued_tokens"], max_tokens=kw["max_tokens"],
        max_n=kw["max_n"], max_inputs=kw["max_inputs"], request_timeout_s=kw["request_timeout"],
        max_body_bytes=kw["max_body_bytes"], drain_timeout_s=kw["drain_timeout"],
        continuous_batching=kw["continuous_batching"])
    try:
        import uvicorn

        from ..serving.app import create_app
    except ImportError as exc:
        raise NlpappError(f"nlpapp serve needs {exc.name}: {SERVE_EXTRA}") from None
    runtime = state().runtime(**load_settings(kw))
    failure: list[str] = []
    server: Any = None

    def load_failed(message: str) -> None:
        failure.append(message)
        server.should_exit = True

    app = create_app(runtime, config, on_load_failed=load_failed)
    server = _Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=kw["log_level"],
                                    timeout_graceful_shutdown=config.drain_timeout_s,
                                    access_log=kw["log_level"] in ("info", "debug")),
                     as_json=kw["as_json"])
    server.run()
    if failure:
        raise NlpappError(f"could not load the models: {failure[0]}")


serve.params.extend(trust_options())


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server; a SIGTERM or Ctrl-C drains in-flight requests and the process
        exits 0 (uvicorn re-raises the signal after shutting down, which would exit 143)."""

        def __init__(self, config: Any, as_json: bool):
            super().__init__(config)
            self.as_json = as_json

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                _announce(self, self.as_json)

    return Server


def _Server(config: Any, as_json: bool) -> Any:  # noqa: N802 - a class made when uvicorn is imported
    return _server_class()(config, as_json)


def _announce(server: Any, as_json: bool) -> None:
    """Say where the server listens (the real port when --port 0 was given)."""
    import json

    from .. import log

    host, port = server.config.host, server.config.port
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if as_json:
        click.echo(json.dumps({"url": url, "host": host, "port": port, "pid": os.getpid()}), nl=True)
    else:
        log.info(f"serving on {url} (playground at {url}/, OpenAPI at {url}/openapi.json); "
                 "GET /ready answers 200 once the models are loaded")
