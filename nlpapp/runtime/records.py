"""Reading input records (JSONL, CSV, TSV, plain text, stdin) and writing predictions.

Records stream: nothing reads a whole file into memory. Every error names the file and,
where there is one, the line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from ..errors import InputError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".txt": "text"}


def detect_format(path: str) -> str:
    if path == "-":
        return "jsonl-or-text"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown input format {suffix or '(no suffix)'}; use .jsonl, .csv, "
                         ".tsv or .txt")
    return FORMATS[suffix]


def read_records(path: str, text_field: str, columns: dict[str, str] | None = None
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, record)`` pairs; ``columns`` maps task field -> column in the file.
    Plain text gives one record per non-empty line, in ``text_field``."""
    columns = columns or {}
    fmt = detect_format(path)
    if path != "-" and not Path(path).is_file():
        raise InputError(f"input file {path} does not exist" if not Path(path).exists()
                         else f"input {path} is not a file")
    try:
        handle: IO[str] = sys.stdin if path == "-" else open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        try:
            yield from _parse(handle, path, fmt, text_field, columns)
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None


def _parse(handle: IO[str], path: str, fmt: str, text_field: str, columns: dict[str, str]
           ) -> Iterator[tuple[str, dict[str, Any]]]:
    if fmt in ("csv", "tsv"):
        reader = csv.DictReader(handle, delimiter="," if fmt == "csv" else "\t")
        header = reader.fieldnames or []
        for column in columns.values():
            if column not in header:
                raise InputError(f"{path}: no column {column!r}; the columns are: {', '.join(header)}")
        for number, row in enumerate(reader, start=2):
            yield f"{path}:{number}", map_columns(row, columns)
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if fmt == "text" or (fmt == "jsonl-or-text" and not line.lstrip().startswith("{")):
            yield where, {text_field: line.rstrip("\n")}
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: malformed JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        yield where, map_columns(raw, columns, where)


def map_columns(raw: dict[str, Any], columns: dict[str, str], where: str | None = None) -> dict[str, Any]:
    """Copy each mapped column into its task field; with ``where``, a missing column is an error."""
    if where is not None:
        for field, column in columns.items():
            if column not in raw:
                raise InputError(f"{where}: no field {column!r} (mapped to {field!r}); "
                                 f"the fields are: {', '.join(raw)}")
    record = dict(raw)
    for field, column in columns.items():
        record[field] = raw.get(column)
    return record


def other_columns(record: dict[str, Any], used: Iterable[str]) -> dict[str, Any]:
    """The record's columns the task does not use (an ``id``, say), to pass through to its output."""
    used = set(used)
    return {name: value for name, value in record.items() if name not in used}


def with_columns(columns: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``columns`` passed through, then the task's ``fields``. A column named like a field is
    renamed ``input_<name>``: the task's own fields are never overwritten."""
    merged: dict[str, Any] = {}
    for name, value in columns.items():
        while name in fields or name in merged:
            name = f"input_{name}"
        merged[name] = value
    return {**merged, **fields}


def parse_columns(text: str | None) -> dict[str, str]:
    """``question=q,context=passage`` -> ``{"question": "q", "context": "passage"}``."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise InputError(f"--columns: {part!r} is not FIELD=COLUMN")
        mapping[field.strip()] = column.strip()
    return mapping
