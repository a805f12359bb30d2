"""``nlpapp run TASK``: one subcommand per registered task kind, built from its declared
inputs and options, so ``nlpapp run qa --help`` shows exactly what the QA task takes. The
command turns its options into a ``RunFileConfig`` and calls ``Runtime.run_file``; this
module only gathers inputs from arguments and stdin, and prints."""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any, Iterator

import click

from ..configs import RunFileConfig
from ..errors import InputError
from ..task import TaskKind
from .common import columns_from, device_options, load_settings, pop_task_options, task_option_params, trust_options
from .params import config_options, config_values
from .state import state


def _common_options(task: TaskKind) -> list[click.Parameter]:
    main_field = task.input_fields[0]
    params: list[click.Parameter] = [
        click.Argument(["texts"], nargs=-1),
        *config_options(RunFileConfig),
        click.Option(["--text-column"], metavar="NAME",
                     help=f"Column or field holding the {main_field!r} input."),
        click.Option(["--columns"], metavar="FIELD=COL,...", help="Map task fields to columns."),
        *device_options(),
        click.Option(["--json", "as_json"], is_flag=True, help="Print one JSON object per output."),
        *trust_options(),
    ]
    for name in task.input_fields:
        params.append(click.Option([f"--{name.replace('_', '-')}", f"field_{name}"], metavar="TEXT",
                                   help=f"The {name!r} input (for a file: the same value for every line)."))
    return params + task_option_params(task)


def _argument_records(task: TaskKind, texts: tuple[str, ...], constants: dict[str, str],
                      columns: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Inputs given as arguments, as ``--FIELD`` values alone, or piped to stdin. Raises
    ``InputError`` when there are none, or for stdin that is not UTF-8 (its line and byte)."""
    from ..runtime.records import read_records

    main_field = task.input_fields[0]
    if texts:
        return ((f"argument {n}", {**constants, main_field: text}) for n, text in enumerate(texts, start=1))
    if main_field in constants:
        return iter([("options", constants)])
    if not sys.stdin.isatty():  # streamed: a long pipe is never held in memory whole
        piped = ((where, {**record, **constants}) for where, record in read_records("-", main_field, columns))
        first = next(piped, None)
        if first is not None:
            return itertools.chain([first], piped)
    raise InputError(f"no input: give the {main_field} as an argument, with --{main_field.replace('_', '-')}, "
                     f"with --input FILE, or on stdin (see nlpapp run {task.name} --help)")


def run_task(task: TaskKind, task_file: Any, **kw: Any) -> None:
    from ..run_file import as_row
    from . import declared

    declared.from_file(kw, task_file, {"model": task_file and task_file.model})
    constants = {name: value for name in task.input_fields if (value := kw.pop(f"field_{name}")) is not None}
    options = pop_task_options(task, kw, file_options=declared.file_options(task_file))
    columns = columns_from(task, task_file, kw)
    settings = config_values(RunFileConfig, kw)
    from_file = settings.get("input")
    if from_file is not None and kw["texts"]:
        raise InputError("give inputs either as arguments or with --input, not both")
    records = None if from_file is not None else _argument_records(task, kw["texts"], constants, columns)
    config = RunFileConfig(**settings, task=task.name, options=options, columns=columns, constants=constants,
                           task_file=str(task_file.path) if task_file else None)
    runtime = state().runtime(**load_settings(kw))
    streamed: list[str] = []

    def stream(piece: str) -> None:
        streamed.append(piece)
        click.echo(piece, nl=False)

    def show(item: Any, output: Any, others: dict[str, Any]) -> None:
        if kw["as_json"]:
            click.echo(json.dumps(as_row(item, output, others), ensure_ascii=False, default=str))
        elif streamed:
            click.echo()  # the text is already on screen; end its line
        else:
            click.echo(task.render(output))

    streaming = task.streams and not kw["as_json"] and config.output is None
    with _progress(task, from_file) as progress:
        result = runtime.run_file(config, on_batch=progress.update if progress is not None else None,
                                  on_output=show, records=records, stream=stream if streaming else None)
    if config.output is not None:
        click.echo(f"nlpapp: wrote {result.outputs} predictions to {config.output}", err=True)


def _progress(task: TaskKind, input_path: str | None):
    """A progress bar on stderr for file inputs (tqdm hides it when stderr is not a terminal)."""
    import contextlib

    if input_path in (None, "-"):
        return contextlib.nullcontext()
    from tqdm import tqdm

    return tqdm(unit="item", file=sys.stderr, disable=None, desc=task.name)


class RunGroup(click.Group):
    """Subcommands come from the task registry, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from . import declared

        return declared.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from . import declared

        task, task_file = declared.resolve(name)  # unknown -> did you mean
        about = _help(task) + (f"\n\nDefaults from task file {task_file.path.name}." if task_file else "")
        return click.Command(name, params=_common_options(task), help=about,
                             callback=lambda **kw: run_task(task, task_file, **kw))


def _help(task: TaskKind) -> str:
    fields = ", ".join(task.input_fields)
    return (f"{task.description}\n\nInputs: {fields}. Default model: {task.default_model}. "
            f"Model heads: {', '.join(str(f) for f in task.heads)}."
            + (f"\n\n{task.notes}" if task.notes else ""))


run = RunGroup("run", help="Run a task on text given as arguments, on stdin or in a file.")
