"""``nlpapp run TASK``: one subcommand per registered task kind, built from its declared
inputs and options, so ``nlpapp run qa --help`` shows exactly what the QA task takes."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from .. import runs
from ..errors import InputError, NlpappError
from ..task import TaskKind
from ..types import LoadOptions


DTYPES = ["auto", "float32", "bfloat16", "float16"]


def _common_options(task: TaskKind) -> list[click.Parameter]:
    main_field = task.input_fields[0]
    params: list[click.Parameter] = [
        click.Argument(["texts"], nargs=-1),
        click.Option(["-i", "--input", "input_path"], metavar="FILE",
                     help="Read inputs from a .jsonl, .csv, .tsv or .txt file ('-' for stdin), or a registered dataset."),
        click.Option(["-o", "--output", "output_path"], metavar="FILE",
                     help="Write predictions as JSONL, replacing FILE only when all succeed."),
        click.Option(["--text-column"], metavar="NAME",
                     help=f"Column or field holding the {main_field!r} input."),
        click.Option(["--columns"], metavar="FIELD=COL,...", help="Map task fields to columns."),
        click.Option(["-m", "--model"], metavar="SPEC",
                     help=f"Registered name, folder, .gguf file or hub id [default: {task.default_model}]."),
        click.Option(["-a", "--adapter"], metavar="NAME|DIR",
                     help="A trained adapter (folder or name from nlpapp adapters list); its base is the default model."),
        click.Option(["--device"], default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.Option(["--dtype"], default="auto", show_default=True,
                     type=click.Choice(DTYPES)),
        click.Option(["--batch-size"], type=int, default=8, show_default=True),
        click.Option(["--json", "as_json"], is_flag=True, help="Print one JSON object per output."),
        click.Option(["--allow-pickle"], is_flag=True, help="Allow pickle weights (can run code)."),
        click.Option(["--trust-remote-code"], is_flag=True, help="Run the model repository's own code."),
    ]
    for name in task.input_fields:
        params.append(click.Option([f"--{name.replace('_', '-')}", f"field_{name}"], metavar="TEXT",
                                   help=f"The {name!r} input (for a file: the same value for every line)."))
    return params + task_option_params(task)


def task_option_params(task: TaskKind, training: bool = False) -> list[click.Parameter]:
    """The task's own options (for training, those that shape the examples); their values
    arrive as ``opt_<name>``."""
    params: list[click.Parameter] = []
    for opt in task_options(task, training):
        flag = f"--{opt.name.replace('_', '-')}"
        if opt.type is bool:
            params.append(click.Option([flag, f"opt_{opt.name}"], is_flag=True, help=opt.help))
            continue
        params.append(click.Option(
            [flag, f"opt_{opt.name}"], type=click.Choice(opt.choices) if opt.choices else opt.type,
            default=opt.default, show_default=opt.default is not None, help=opt.help))
    return params


def task_options(task: TaskKind, training: bool = False) -> list:
    return [opt for opt in task.options if not (training and opt.inference_only)]


def pop_task_options(task: TaskKind, kw: dict[str, Any], training: bool = False) -> dict[str, Any]:
    return {opt.name: kw.pop(f"opt_{opt.name}") for opt in task_options(task, training)}


def _records(registries: Any, task: TaskKind, texts: tuple[str, ...], input_path: str | None,
             fields: dict[str, str | None], columns: dict[str, str]):
    from .. import datasets
    from ..runtime.records import read_records

    main_field = task.input_fields[0]
    constants = {k: v for k, v in fields.items() if v is not None}
    if input_path is not None:
        if texts:
            raise InputError("give inputs either as arguments or with --input, not both")
        for where, record in datasets.open_records(registries, task, input_path, columns):
            yield where, {**record, **constants}
        return
    if texts:
        for n, text in enumerate(texts, start=1):
            yield f"argument {n}", {**constants, main_field: text}
        return
    if main_field in constants:
        yield "options", constants
        return
    if not sys.stdin.isatty():
        seen = False
        for where, record in read_records("-", main_field, columns):
            seen = True
            yield where, {**record, **constants}
        if seen:
            return
    raise InputError(f"no input: give the {main_field} as an argument, with --{main_field.replace('_', '-')}, "
                     f"with --input FILE, or on stdin (see nlpapp run {task.name} --help)")


def run_task(task: TaskKind, task_file: Any, **kw: Any) -> None:
    from .. import api
    from ..runtime.records import parse_columns
    from . import declared
    from .main import STATE

    declared.from_file(kw, task_file, {"model": task_file and task_file.model,
                                       **{k: v for k, v in declared.option_defaults(task_file).items() if k in kw}})
    fields = {name: kw.pop(f"field_{name}") for name in task.input_fields}
    options = pop_task_options(task, kw)
    columns = declared.columns(task_file, parse_columns(kw["columns"]))
    if kw["text_column"]:
        columns[task.input_fields[0]] = kw["text_column"]
    load = LoadOptions(device=kw["device"], dtype=kw["dtype"], allow_pickle=kw["allow_pickle"],
                       trust_remote_code=kw["trust_remote_code"])
    output_path = Path(kw["output_path"]) if kw["output_path"] else None
    if output_path is not None:
        check_writable(output_path)
    streamed: list[str] = []

    def stream(piece: str) -> None:
        streamed.append(piece)
        click.echo(piece, nl=False)

    records = _records(STATE.plugins.registries, task, kw["texts"], kw["input_path"], fields, columns)
    total = None
    if kw["input_path"] not in (None, "-"):  # check the whole file before loading a model
        from .. import datasets

        total = datasets.validate(records, task.make_input, kw["input_path"])
        records = _records(STATE.plugins.registries, task, kw["texts"], kw["input_path"], fields, columns)
    records, results_with_columns = _passing_through(records, {*task.input_fields, *columns.values()})
    runtime = api.Runtime(STATE.plugins, load)
    config = record_config(kw, options, columns, task_file)
    inputs = [kw["input_path"]] if kw["input_path"] and kw["input_path"] != "-" else []
    with runs.recording("run", task.name, config, inputs) as record, _progress(task, total) as progress:
        results = results_with_columns(api.run(
            runtime, task.name, records, model=kw["model"], adapter=kw["adapter"], options=options,
            batch_size=kw["batch_size"],
            stream=stream if task.streams and not kw["as_json"] and output_path is None else None,
            on_batch=progress.update if progress is not None else None))
        record.extra = runs.model_identity(runtime.models, kw["model"] or task.default_model, kw["adapter"])
        written = (_write_jsonl(output_path, results) if output_path is not None
                   else _print(task, results, kw["as_json"], streamed))
        record.extra["outputs"] = written
    if output_path is not None:
        click.echo(f"nlpapp: wrote {written} predictions to {output_path}", err=True)


def record_config(kw: dict[str, Any], options: dict[str, Any], columns: dict[str, str],
                  task_file: Any) -> dict[str, Any]:
    """The resolved command-line options, as the run record keeps them."""
    return {**{k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}, "options": options,
            "columns": columns, "task_file": str(task_file.path) if task_file else None}


def _passing_through(records: Any, used: set[str]) -> tuple[Any, Any]:
    """Keep each record's other columns (an ``id``, say) while its input is in flight, and
    give them back with its output: ``api.run`` yields outputs in input order."""
    from collections import deque

    from ..runtime.records import other_columns

    waiting: deque[dict[str, Any]] = deque()

    def keep(records: Any) -> Any:
        for where, record in records:
            waiting.append(other_columns(record, used))
            yield where, record

    def give_back(results: Any) -> Any:
        for item, output in results:
            yield item, output, waiting.popleft()

    return keep(records), give_back


def _print(task: TaskKind, results: Any, as_json: bool, streamed: list[str]) -> int:
    """Print each output; ``streamed`` fills while the first output is being generated."""
    count = 0
    for item, output, columns in results:
        if as_json:
            click.echo(json.dumps(_as_record(item, output, columns), ensure_ascii=False, default=str))
        elif streamed:
            click.echo()  # the text is already on screen; end its line
        else:
            click.echo(task.render(output))
        count += 1
    return count


def _progress(task: TaskKind, total: int | None):
    """A progress bar on stderr for file inputs (tqdm hides it when stderr is not a terminal)."""
    import contextlib

    if total is None:
        return contextlib.nullcontext()
    from tqdm import tqdm

    return tqdm(total=total, unit="item", file=sys.stderr, disable=None, desc=task.name)


def _as_record(item: Any, output: Any, columns: dict[str, Any]) -> dict[str, Any]:
    """The input's other columns, then its task fields, then the output's."""
    from ..runtime.records import with_columns

    return with_columns(columns, {**dataclasses.asdict(item), **dataclasses.asdict(output)})


def check_writable(path: Path) -> None:
    """Fail before any model work if the output cannot be written."""
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NlpappError(f"cannot write {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise NlpappError(f"cannot write {path}: it is a folder")
    if not os.access(path.parent, os.W_OK):
        raise NlpappError(f"cannot write {path}: no permission to write in {path.parent}")


def _write_jsonl(path: Path, results) -> int:
    """Stream predictions into a scratch file beside ``path``; rename it over ``path`` only
    when every input succeeded, so a failure never leaves a half-written output."""
    from ..runtime.atomic import atomic_file

    count = 0
    with atomic_file(path) as handle:
        for item, output, columns in results:
            handle.write(json.dumps(_as_record(item, output, columns), ensure_ascii=False, default=str) + "\n")
            handle.flush()
            count += 1
    return count


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
