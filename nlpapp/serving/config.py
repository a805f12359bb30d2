"""The server's settings, parsed and checked once, before anything loads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import NlpappError

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class ServeConfig:
    """What ``nlpapp serve`` runs. Limits are per server process.

    ``batch_wait_ms``: how long the first request of a batch waits for others to join it
    when the model is idle (a full batch goes at once). ``max_requests``: requests admitted
    at once, queued or running; ``max_queued_tokens``: their estimated tokens (input
    characters / 4, plus ``max_tokens`` × ``n`` for generation); beyond either a request
    gets 429 with ``Retry-After``. ``request_timeout_s``: a request still unanswered then
    gets 504 and its work stops. ``max_body_bytes``: larger bodies get 413."""

    models: tuple[str, ...] = ()  # model specs, as --model takes them
    adapters: tuple[tuple[str, str], ...] = ()  # (name, folder or remembered adapter name)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    batch_size: int = 32
    batch_wait_ms: float = 5.0
    max_requests: int = 256
    max_queued_tokens: int = 1_000_000
    max_tokens: int = 1024  # the most new tokens one request may ask for
    max_n: int = 8  # the most choices (OpenAI's ``n``) one request may ask for
    max_inputs: int = 256  # the most inputs in one /v1/tasks or /v1/embeddings request
    request_timeout_s: float = 120.0
    max_body_bytes: int = 4 * 1024 * 1024
    drain_timeout_s: float = 30.0  # on SIGTERM, how long in-flight requests may take to finish
    continuous_batching: bool = False  # generation through transformers' continuous batching where it decodes alike

    def __post_init__(self) -> None:
        if not self.models and not self.adapters:
            raise NlpappError("nothing to serve: pass --model MODEL (and --adapter NAME=PATH for adapters)")
        for name, value in (("--batch-size", self.batch_size), ("--max-requests", self.max_requests),
                            ("--max-queued-tokens", self.max_queued_tokens), ("--max-tokens", self.max_tokens),
                            ("--max-n", self.max_n), ("--max-inputs", self.max_inputs),
                            ("--max-body-bytes", self.max_body_bytes)):
            if value < 1:
                raise NlpappError(f"{name} must be at least 1, got {value}")
        if self.batch_wait_ms < 0 or self.request_timeout_s <= 0 or self.drain_timeout_s < 0:
            raise NlpappError("--batch-wait-ms and --drain-timeout must be >= 0 and --request-timeout > 0")
        if not 0 <= self.port <= 65535:
            raise NlpappError(f"--port must be between 0 and 65535, got {self.port}")
        if not is_loopback(self.host) and not self.api_key:
            raise NlpappError(f"--host {self.host} lets other machines connect: also pass --api-key KEY (or set "
                              "NLPAPP_API_KEY), or bind to 127.0.0.1")
        names = [name for name, _ in self.adapters]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise NlpappError(f"adapter name {duplicated[0]!r} is given twice; give each --adapter its own name")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
