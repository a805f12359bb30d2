"""``Runtime.run_file``: a task over every record of a file, a registered dataset, stdin or
records given directly — checked whole before a model loads (files), streamed through the
batching engine, and written whole or not at all, each output beside its input's other
columns (an ``id`` passes through). Writes a run record."""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .configs import RunFileConfig, RunFileResult

Record = tuple[str, dict[str, Any]]  # (where it came from, the record)
OnOutput = Callable[[Any, Any, dict[str, Any]], None]  # (input, output, other columns)


def run_file(runtime: Any, config: RunFileConfig, on_batch: Callable[[int], None] | None = None,
             on_output: OnOutput | None = None, records: Iterable[Record] | None = None,
             stream: Callable[[str], None] | None = None) -> RunFileResult:
    """``records`` replaces reading ``config.input`` (inputs from command-line arguments);
    without ``config.output`` each result goes to ``on_output`` as it is ready; ``stream``
    gets a single input's generated text piece by piece."""
    from . import datasets, runs
    from .api import check_writable, run, write_jsonl

    task = runtime.task(config.task)
    task.parse_options(config.options)
    output = Path(config.output) if config.output else None
    if output is not None:
        check_writable(output, [config.input, config.task_file])  # never the file being read

    def source() -> Iterator[Record]:
        if records is not None:
            yield from records
            return
        for where, record in datasets.open_records(runtime.registries, task, config.input, config.columns):
            yield where, {**record, **config.constants}

    if records is None and config.input != "-":  # a file is checked whole before a model loads
        datasets.validate(source(), task.make_input, config.input)
    inputs = [config.input] if records is None and config.input != "-" else []
    keep, give_back = _passing_through({*task.input_fields, *config.columns.values()})
    recorded = {**dataclasses.asdict(config), "device": runtime.load_options.device,
                "dtype": runtime.load_options.dtype}
    with runs.recording("run", task.name, recorded, inputs) as record:
        results = give_back(run(runtime, task.name, keep(source()), model=config.model, adapter=config.adapter,
                                options=config.options, batch_size=config.batch_size, stream=stream,
                                on_batch=on_batch))
        model = config.model or runtime._adapter_base(config.adapter) or task.default_model  # what run() loaded
        record.extra = runs.model_identity(runtime.models, model, config.adapter)
        if output is not None:
            written = write_jsonl(output, (as_row(item, out, others) for item, out, others in results))
        else:
            written = 0
            for item, out, others in results:
                if on_output is not None:
                    on_output(item, out, others)
                written += 1
        record.extra["outputs"] = written
    return RunFileResult(run=record.id, outputs=written, output=str(output) if output else None)


def as_row(item: Any, output: Any, others: dict[str, Any]) -> dict[str, Any]:
    """One output line: the input's other columns, then its task fields, then the output's."""
    from .runtime.records import with_columns

    return with_columns(others, {**dataclasses.asdict(item), **dataclasses.asdict(output)})


def _passing_through(used: set[str]) -> tuple[Callable, Callable]:
    """Keep each record's other columns (an ``id``, say) while its input is in flight, and
    give them back with its output: ``api.run`` yields outputs in input order."""
    from .runtime.records import other_columns

    waiting: deque[dict[str, Any]] = deque()

    def keep(records: Iterable[Record]) -> Iterator[Record]:
        for where, record in records:
            waiting.append(other_columns(record, used))
            yield where, record

    def give_back(results: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
        for item, output in results:
            yield item, output, waiting.popleft()

    return keep, give_back
