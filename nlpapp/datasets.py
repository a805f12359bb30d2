"""Where examples come from: a file (JSONL, CSV, TSV, plain text) or a dataset a plugin
registered through ``register_datasets``. Both give ``(where, record)`` pairs as a stream,
so ``--data`` can name either.

``validate()`` reads a whole source once before any model work and reports every bad
record it finds (file, line, field), not just the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError
from .task import TaskKind

MAX_LISTED_PROBLEMS = 10  # more than this and the first ones are enough to see the pattern

Records = Iterator[tuple[str, dict[str, Any]]]


def is_registered(registries: Any, spec: str) -> bool:
    """A registered dataset name; a path that exists wins over a dataset of the same name."""
    return spec in registries.datasets and not Path(spec).exists()


def open_records(registries: Any, task: TaskKind, spec: str, columns: dict[str, str] | None = None) -> Records:
    """Stream the records of ``spec``: a registered dataset name or a file path ('-': stdin)."""
    from .runtime.records import map_columns, read_records

    columns = columns or {}
    if not is_registered(registries, spec):
        yield from read_records(spec, task.input_fields[0], columns)
        return
    dataset = registries.datasets.get(spec)
    if dataset.task != task.name:
        raise InputError(f"dataset {spec!r} is for task {dataset.task!r}, not {task.name!r}")
    for number, raw in enumerate(dataset.open(), start=1):
        where = f"dataset {spec}, record {number}"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
        yield where, map_columns(raw, columns, where)


def references(task: TaskKind, record: dict[str, Any], where: str) -> list[str]:
    """The reference strings of a labelled record (its first target field: a string or a list)."""
    field = task.target_fields[0]
    value = record.get(field)
    if isinstance(value, dict) and "text" in value:  # SQuAD's {"text": [...], "answer_start": [...]}
        value = value["text"]
    found = value if isinstance(value, list) else [value] if value is not None else []
    found = [str(r) for r in found if r is not None and str(r).strip()]
    if not found:
        raise InputError(f"{where}: no reference in field {field!r} (map it with --columns {field}=COLUMN)")
    return found


def validate(records: Iterable[tuple[str, dict[str, Any]]], check: Callable[[dict[str, Any], str], Any],
             source: str) -> int:
    """Run ``check(record, where)`` on every record; return how many there are, or raise one
    ``InputError``: the problem itself when there is one, else a summary line and a list.
    A reader error (a missing file, malformed JSON) ends the pass."""
    problems: list[str] = []
    count = 0
    try:
        for where, record in records:
            count += 1
            try:
                check(record, where)
            except InputError as exc:
                problems.append(str(exc))
    except InputError as exc:  # the file cannot be read on (missing, malformed JSON)
        if not problems:
            raise
        problems.append(str(exc))
    if len(problems) == 1:
        raise InputError(problems[0])
    if problems:
        listed = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(listed)
        raise InputError(f"{source}: {len(problems)} invalid record{'s' * (len(problems) > 1)}; nothing was run\n  "
                         + "\n  ".join(listed) + (f"\n  ... and {more} more" if more else ""))
    if not count:
        raise InputError(f"{source}: no records")
    return count


def check_labelled(task: TaskKind) -> Callable[[dict[str, Any], str], Any]:
    """The schema of a labelled example: the task's input fields and a reference."""
    def check(record: dict[str, Any], where: str) -> None:
        task.make_input(record, where)
        references(task, record, where)
    return check


def describe(registries: Any) -> list[dict[str, Any]]:
    return [{"name": d.name, "task": d.task, "description": d.description,
             "plugin": registries.datasets.plugin_of(d.name)} for d in registries.datasets]


def packaged_jsonl(package: str, filename: str) -> Callable[[], Iterator[dict[str, Any]]]:
    """A ``DatasetSpec.open`` for a JSONL file shipped inside a plugin's package."""
    def open_file() -> Iterator[dict[str, Any]]:
        import json
        from importlib import resources

        with resources.files(package).joinpath(filename).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    return open_file
