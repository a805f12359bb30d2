"""Plain-text and JSON output shared by the commands."""

from __future__ import annotations

import json
from typing import Any

import click


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def confirm(question: str) -> None:
    """Ask before deleting; "no" aborts. With nothing to read the answer from (end of input,
    as in a script), say how to go on instead of aborting as if interrupted."""
    from ..errors import NlpappError

    try:
        agreed = click.confirm(question)
    except click.Abort:
        raise NlpappError(f"{question.rstrip('?')}: no answer to read; pass -y to go ahead") from None
    if not agreed:
        raise click.Abort()
