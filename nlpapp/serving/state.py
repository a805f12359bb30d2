"""The server's state, shared by its routes, and how a request's work reaches the model
thread: admitted (or refused), queued, awaited until its answer, its deadline or its
client's disconnect."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from .admission import Admission, Ticket
from .batcher import Batcher, BatchRunner
from .catalog import Catalog
from .continuous import ContinuousBatching
from .config import ServeConfig
from .problems import Problem, from_exception
from .telemetry import Telemetry

DISCONNECT_POLL_S = 0.1  # how often a waiting request checks whether its client went away


@dataclass
class ServerState:
    config: ServeConfig
    catalog: Catalog
    telemetry: Telemetry = field(default_factory=Telemetry)
    load_error: str | None = None
    continuous: dict[int, ContinuousBatching] = field(default_factory=dict)  # id(model) -> its engine

    def __post_init__(self) -> None:
        self.admission = Admission(self.config.max_requests, self.config.max_queued_tokens)
        self.batcher = Batcher(self.config.batch_size, self.config.batch_wait_ms / 1000,
                               on_batch=self.telemetry.on_batch, on_queue=self.telemetry.queue_depth.set)

    @property
    def ready(self) -> bool:
        return self.load_error is None and self.catalog.loaded

    async def load(self) -> None:
        """Load every served model on the model thread; a failure is kept in ``load_error``."""
        try:
            await self.batcher.call(self.catalog.load)
            if self.config.continuous_batching:
                await self.batcher.call(self._start_continuous_batching)
        except Exception as exc:  # noqa: BLE001 - reported by /ready and by whoever started the server
            self.load_error = str(exc) or type(exc).__name__

    def _start_continuous_batching(self) -> None:
        from ..head import Head
        from ..runtime.hf import is_peft_model

        for served in self.catalog.entries.values():
            model = served.model
            if model is not None and model.head == Head.CAUSAL_LM and hasattr(model, "prompt_texts") \
                    and not is_peft_model(model.hf_model) and id(model) not in self.continuous:
                self.continuous[id(model)] = ContinuousBatching(model, self.config.max_tokens, self.config.batch_size)

    def stop(self) -> None:
        """Stop the model thread and any continuous-batching engines (what runs finishes first)."""
        for engine in self.continuous.values():
            engine.stop(self.config.drain_timeout_s)
        self.batcher.stop(self.config.drain_timeout_s)

    def admit(self, tokens: int) -> Ticket:
        """A place for a request, or ``Problem`` 503 while loading, 429 when full."""
        if not self.ready:
            raise Problem(503, self.load_error or "the models are still loading; retry when GET /ready is 200",
                          "server_error", code="not_ready", headers={"Retry-After": "1"})
        ticket = self.admission.admit(tokens)
        self.telemetry.in_flight.set(self.admission.requests)
        return ticket

    def release(self, ticket: Ticket) -> None:
        ticket.release()
        self.telemetry.in_flight.set(self.admission.requests)

    async def run(self, request: Any, tokens: int, key: Hashable, items: list[Any], runner: BatchRunner) -> list[Any]:
        """Admit, queue and await ``items``' results (``Problem`` 429/503 before any work,
        504 past the deadline, 499 when the client disconnected)."""
        ticket = self.admit(tokens)
        try:
            return await self.wait(request, self.batcher.submit(key, items, runner))
        finally:
            self.release(ticket)

    async def wait(self, request: Any, future: asyncio.Future, abandon: Callable[[], None] | None = None) -> Any:
        """``future``'s result, unless the deadline passes (504) or the client goes away
        (499); either way ``abandon()`` is called (by default the batcher's job is cancelled,
        so the model thread drops or stops it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.request_timeout_s
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise Problem(504, f"no answer within {self.config.request_timeout_s:g} s (--request-timeout); "
                                       "send less, or retry when the server is less busy", "timeout_error",
                                  code="deadline_exceeded")
                done, _ = await asyncio.wait({future}, timeout=min(DISCONNECT_POLL_S, left))
                if done:
                    try:
                        return future.result()
                    except (Problem, asyncio.CancelledError):
                        raise
                    except Exception as exc:  # from the model thread: answered here, not by the 500 handler
                        raise from_exception(exc) from exc
                if request is not None and await request.is_disconnected():
                    raise Problem(499, "the client closed the connection", code="client_closed")
        except BaseException:
            if abandon is not None:
                abandon()
            else:
                future.job.cancelled.set()  # type: ignore[attr-defined]
            raise
