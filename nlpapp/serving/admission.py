"""Admission: how much work a server takes on at once.

A request is admitted only if the requests in flight (queued or running) stay within
``max_requests`` and their estimated tokens within ``max_tokens``; otherwise it is refused
at once (429 with ``Retry-After``), before it costs any model time, so overload shows as
fast refusals rather than slow answers for everyone. The estimate is the input's characters
/ ``CHARS_PER_ESTIMATED_TOKEN`` plus the tokens it may generate."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from .problems import Problem

# English BPE text averages about four characters a token (OpenAI's rule of thumb for its
# tokenizers); the estimate only has to be the right size to bound memory and waiting.
CHARS_PER_ESTIMATED_TOKEN = 4


def estimate_tokens(chars: int, new_tokens: int = 0) -> int:
    return math.ceil(chars / CHARS_PER_ESTIMATED_TOKEN) + new_tokens


@dataclass
class Ticket:
    """A held place; ``release`` it when the request is answered (twice is harmless)."""

    admission: "Admission"
    tokens: int
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._release(self)


class Admission:
    def __init__(self, max_requests: int, max_tokens: int):
        self.max_requests, self.max_tokens = max_requests, max_tokens
        self.requests = self.tokens = 0
        self._lock = threading.Lock()
        self._finished: list[float] = []  # when recent requests finished, for Retry-After

    def admit(self, tokens: int) -> Ticket:
        """A ticket for a request of ``tokens`` estimated tokens.

        :raises Problem: 429 with ``Retry-After`` when the server is full, 413 when the
            request alone exceeds the token budget (it could never be admitted)."""
        if tokens > self.max_tokens:
            raise Problem(413, f"the request needs about {tokens:,} tokens; this server takes at most "
                               f"{self.max_tokens:,} at once (--max-queued-tokens): send less", code="too_large")
        with self._lock:
            if self.requests + 1 > self.max_requests or self.tokens + tokens > self.max_tokens:
                full = "requests" if self.requests + 1 > self.max_requests else "tokens"
                raise Problem(429, f"the server is at capacity ({self.requests} requests, {self.tokens:,} tokens "
                                   f"in flight; limited by {full}); retry later", "rate_limit_error",
                              code="overloaded", headers={"Retry-After": str(self.retry_after())})
            self.requests += 1
            self.tokens += tokens
        return Ticket(self, tokens)

    def retry_after(self) -> int:
        """Whole seconds until a place is likely free: the time the requests in flight take to
        finish at the rate recent ones did (at least 1, at most 60)."""
        now = time.monotonic()
        recent = [t for t in self._finished if now - t < 30]
        if not recent:
            return 1
        rate = len(recent) / max(1.0, now - recent[0])  # requests finished per second
        return max(1, min(60, math.ceil(1 / rate)))

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            self.requests -= 1
            self.tokens -= ticket.tokens
            self._finished = self._finished[-200:] + [time.monotonic()]
