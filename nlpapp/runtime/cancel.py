"""Stopping work a caller no longer wants, from the thread that runs it.

A server's model thread runs each batch inside ``stop_when(check)``; the Hugging Face
backend adds a stopping criterion that asks ``requested()`` after every generated token,
so generation for clients that all went away (or ran out of time) ends at the next token
instead of at ``max_new_tokens``. Outside ``stop_when`` nothing ever stops."""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

_local = threading.local()


@contextlib.contextmanager
def stop_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block, ``requested()`` is ``check()``, on this thread only."""
    previous = getattr(_local, "check", None)
    _local.check = check
    try:
        yield
    finally:
        _local.check = previous


def requested() -> bool:
    """Whether the work this thread runs should stop now (``nlpapp.stop_requested``): a
    backend that generates token by token asks it after each token and ends the batch when
    it says so (the clients of a server batch all went away, or ran out of time)."""
    check = getattr(_local, "check", None)
    return bool(check and check())


def active() -> bool:
    """Whether this thread runs inside ``stop_when`` (only then is a stopping check worth adding)."""
    return getattr(_local, "check", None) is not None
