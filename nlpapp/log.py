"""One-line messages to the user on stderr, in one format."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """Tell the user something went less well than asked, without stopping."""
    print(f"nlpapp: warning: {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(f"nlpapp: {message}", file=sys.stderr, flush=True)
