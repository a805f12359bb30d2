"""What the task commands (run, train, eval) share: dtype choices, the task's own options
as flags, and column mapping."""

from __future__ import annotations

from typing import Any

import click

from ..declarative import TaskFile
from ..errors import NlpappError
from ..task import TaskKind

DTYPES = ["auto", "float32", "bfloat16", "float16"]


def device_options(backend: bool = True) -> list[click.Parameter]:
    """--device, --dtype and (for inference) --backend, the same on every command that loads a model."""
    params: list[click.Parameter] = [
        click.Option(["--device"], default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.Option(["--dtype"], default="auto", show_default=True, type=click.Choice(DTYPES),
                     help="auto: bfloat16 where the GPU or CPU computes it natively (AVX512-BF16, AMX), "
                          "float32 elsewhere."),
    ]
    if backend:
        params.append(click.Option(["--backend"], default="auto", show_default=True, metavar="NAME",
                                   help="What runs the model: torch (auto), or a plugin's backend such as "
                                        "llamacpp (pip install nlpapp-llamacpp) for .gguf models."))
    return params


def load_settings(kw: dict[str, Any]) -> dict[str, Any]:
    """``LoadOptions`` fields from ``device_options`` and ``trust_options``."""
    settings = {"device": kw["device"], "dtype": kw["dtype"], **trust_settings(kw)}
    if "backend" in kw:
        settings["backend"] = kw["backend"]
    return settings


def trust_options() -> list[click.Parameter]:
    """The opt-ins of docs/security.md, the same on every command that loads a model."""
    return [click.Option(["--allow-pickle"], is_flag=True, help="Allow pickle weights (can run code)."),
            click.Option(["--trust-remote-code"], is_flag=True, help="Run the model repository's own code."),
            click.Option(["--revision"], metavar="REV",
                         help="Branch, tag or commit of a hub model; a commit with --trust-remote-code.")]


def trust_settings(kw: dict[str, Any]) -> dict[str, Any]:
    """``LoadOptions`` fields from the ``trust_options`` a command was given."""
    return {"allow_pickle": kw["allow_pickle"], "trust_remote_code": kw["trust_remote_code"],
            "revision": kw["revision"]}


def task_option_params(task: TaskKind, training: bool = False, skip: frozenset[str] = frozenset()
                       ) -> list[click.Parameter]:
    """The task's own options (for training, those that shape the examples), from its
    ``Options`` dataclass, less those named in ``skip`` (a command's own option of the same
    name wins); their values arrive as ``opt_<name>``."""
    from .params import options_from

    return options_from(task.Options, [f for f in task.Options.fields(training) if f.name not in skip])


def pop_task_options(task: TaskKind, kw: dict[str, Any], training: bool = False,
                     file_options: dict[str, Any] | None = None, skip: frozenset[str] = frozenset()
                     ) -> dict[str, Any]:
    """The options the user gave on the command line, over a task file's; checked against
    the task's ``Options`` (an unknown or ill-typed one is one line naming it)."""
    from ..options import OptionError
    from .params import given

    typed = given(kw, [f for f in task.Options.fields(training) if f.name not in skip])
    try:
        task.parse_options(typed)
    except OptionError as exc:  # said in the user's terms: the flag they typed
        raise NlpappError(f"--{exc.option.replace('_', '-')} {exc.problem}") from None
    chosen = {**(file_options or {}), **typed}
    task.parse_options(chosen)
    return chosen


def columns_from(task: TaskKind, task_file: TaskFile | None, kw: dict[str, Any]) -> dict[str, str]:
    """Task field -> column: the task file's, then ``--columns``, ``--text-column`` and
    ``--target-column`` (popped from ``kw``)."""
    from ..runtime.records import parse_columns
    from . import declared

    columns = declared.columns(task_file, parse_columns(kw.pop("columns", None)))
    text_column, target_column = kw.pop("text_column", None), kw.pop("target_column", None)
    if text_column:
        columns[task.input_fields[0]] = text_column
    if target_column and task.target_fields:
        columns[task.target_fields[0]] = target_column
    return columns
