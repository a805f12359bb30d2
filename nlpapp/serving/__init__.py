"""``nlpapp serve``: the runtime behind HTTP.

- ``config``: ``ServeConfig``, the server's settings, checked once;
- ``catalog``: the models and adapters a server was started with, and how a request names them;
- ``batcher``: one model thread that gathers concurrent requests into batches;
- ``admission``: bounded requests and tokens in flight (429 with ``Retry-After`` beyond);
- ``schemas``: request and response models, per task from its ``Input``/``Output``/``Options``;
- ``openai_routes`` and ``task_routes``: the endpoints; ``app``: the FastAPI application.

FastAPI (on Starlette) does the HTTP, uvicorn serves it, sse-starlette streams server-sent
events and prometheus-client keeps the metrics; none of them is imported until a server is made."""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def create_app(runtime, config):  # noqa: ANN001, ANN201 - FastAPI is imported only here
    """The FastAPI application serving ``runtime`` as ``config`` says (``nlpapp.serving.app``)."""
    from .app import create_app as create

    return create(runtime, config)
