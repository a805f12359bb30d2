"""Where examples come from: a file (JSONL, CSV, TSV, plain text) or a dataset a plugin
registered through ``register_datasets``. Both give ``(where, record)`` pairs as a stream,
so ``--data`` can name either.

``validate()`` reads a whole source once before any model work and reports every bad
record it finds (file, line, field), not just the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError, MissingFieldError
from .task import TaskKind

MAX_LISTED_PROBLEMS = 10  # more than this and the first ones are enough to see the pattern
MAX_LISTED_COLUMNS = 20  # a wide file's first columns are enough to spot the one to map

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
    if registries.tasks.canonical(dataset.task) != task.name:  # a dataset may name a task by an alias
        raise InputError(f"dataset {spec!r} is for task {registries.tasks.canonical(dataset.task)!r}, "
                         f"not {task.name!r}")
    for number, raw in enumerate(dataset.open(), start=1):
        where = f"dataset {spec}, record {number}"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
        yield where, map_columns(raw, columns, where)


def references(task: TaskKind, record: dict[str, Any], where: str) -> list[str]:
    """The reference strings of a labelled record, as the task reads them (``TaskKind.references``)."""
    return task.references(record, where)


def validate(records: Iterable[tuple[str, dict[str, Any]]], check: Callable[[dict[str, Any], str], Any],
             source: str) -> int:
    """Run ``check(record, where)`` on every record; return how many there are, or raise one
    ``InputError``: the problem itself when there is one, else a summary line and a list.
    A reader error (a missing file, malformed JSON) ends the pass."""
    problems: list[str] = []
    count = 0
    columns: dict[str, None] = {}  # the fields the records have, in order of appearance
    missing: dict[tuple[str, str], int] = {}  # (role, task field) -> records without it
    task = None
    try:
        for where, record in records:
            count += 1
            columns.update(dict.fromkeys(k for k, v in record.items() if v is not None))
            try:
                check(record, where)
            except MissingFieldError as exc:
                task = exc.task
                for key in [("input", f) for f in exc.inputs] + [("target", f) for f in exc.targets]:
                    missing[key] = missing.get(key, 0) + 1
                problems.append(str(exc))
            except InputError as exc:
                problems.append(str(exc))
    except InputError as exc:  # the file cannot be read on (missing, malformed JSON)
        if not problems:
            raise
        problems.append(str(exc))
        missing.clear()  # not every record was seen
    everywhere = [key for key, n in missing.items() if n == count]
    if everywhere:  # a column named otherwise, not bad lines: say it once, with the way to map it
        raise InputError(_missing_everywhere(source, task, everywhere, list(columns)))
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


def _missing_everywhere(source: str, task: Any, missing: list[tuple[str, str]], columns: list[str]) -> str:
    """One line: which task fields no record has, the fields it does have, and the options
    that map a column onto each."""
    inputs = [f for role, f in missing if role == "input"]
    targets = [f for role, f in missing if role == "target"]
    what = " and ".join(filter(None, [
        inputs and f"field{'s' * (len(inputs) > 1)} {', '.join(map(repr, inputs))}",
        targets and f"target field{'s' * (len(targets) > 1)} {', '.join(map(repr, targets))}"]))
    options, other = [], []
    for field in inputs + targets:
        if field == task.input_fields[0]:
            options.append("--text-column COLUMN")
        elif task.target_fields and field == task.target_fields[0]:
            options.append("--target-column COLUMN")
        else:
            other.append(f"{field}=COLUMN")
    if other:
        options.append(f"--columns {','.join(other)}")
    columns = [c for c in columns if c not in (*task.input_fields, *task.target_fields)]  # the candidates
    shown = columns[:MAX_LISTED_COLUMNS] + (["..."] if len(columns) > MAX_LISTED_COLUMNS else [])
    have = f"its fields are: {', '.join(shown)}" if columns else "it has no other fields"
    return (f"{source}: missing {what} in every record (task {task.name!r}); {have}; "
            f"map {'columns' if len(options) > 1 else 'a column'} with {' '.join(options)}")


def check_labelled(task: TaskKind) -> Callable[[dict[str, Any], str], Any]:
    """The schema of a labelled example: the task's input fields and a reference."""
    def check(record: dict[str, Any], where: str) -> None:
        # a record without the reference field, marked so a whole-file check can name it
        absent = tuple(task.target_fields[:1]) if record.get(task.target_fields[0]) is None else ()
        try:
            task.make_input(record, where)
        except MissingFieldError as exc:
            exc.targets = absent
            raise
        try:
            references(task, record, where)
        except MissingFieldError:
            raise
        except InputError as exc:
            raise MissingFieldError(str(exc), task, targets=absent) if absent else exc from None
    return check


def describe(registries: Any) -> list[dict[str, Any]]:
    return [{"name": d.name, "task": registries.tasks.canonical(d.task), "description": d.description,
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
