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
from ..task import MAX_INPUT_CHARS, as_bytes

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".txt": "text"}
# A line of an input file is read only up to this: room for a field at the size cap in any
# UTF-8 (up to 4 bytes a character) with JSON escapes, while a multi-GB file without line
# breaks is refused instead of read whole into memory.
MAX_LINE_BYTES = 8 * MAX_INPUT_CHARS


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
    Plain text gives one record per non-empty line, in ``text_field``. Raises ``InputError``
    for a missing file, a byte that is not UTF-8 (with its line and byte offset), a line
    over ``MAX_LINE_BYTES``, malformed JSON or CSV."""
    columns = columns or {}
    fmt = detect_format(path)
    if path != "-" and not Path(path).is_file():
        raise InputError(f"input file {path} does not exist" if not Path(path).exists()
                         else f"input {path} is not a file")
    try:  # bytes, decoded here so that a bad byte is reported with its offset
        handle: IO[Any] = getattr(sys.stdin, "buffer", sys.stdin) if path == "-" else open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield from _parse(_lines(handle, path), path, fmt, text_field, columns)


def _not_utf8_message(source: str, byte: int, offset: int, line: int) -> str:
    return (f"{source}: not UTF-8 text: byte 0x{byte:02x} at byte offset {offset}, line {line}; convert it to "
            "UTF-8 (iconv -t UTF-8)")


def _lines(handle: IO[Any], path: str) -> Iterator[str]:
    """The lines of ``handle`` (bytes; a text stream in tests) as text, line endings kept
    for the CSV reader; a leading byte-order mark is dropped."""
    source = "stdin" if path == "-" else path
    offset = 0
    for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), type(handle.read(0))()),
                                 start=1):
        data = raw if isinstance(raw, bytes) else as_bytes(raw)
        if len(data) > MAX_LINE_BYTES:
            raise InputError(f"{source}:{number}: line longer than {MAX_LINE_BYTES:,} bytes; an input may hold at "
                             f"most {MAX_INPUT_CHARS:,} characters")
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(_not_utf8_message(source, data[exc.start], offset + exc.start, number)) from None
        offset += len(data)
        yield line.removeprefix("\ufeff") if number == 1 else line


def _parse(lines: Iterator[str], path: str, fmt: str, text_field: str, columns: dict[str, str]
           ) -> Iterator[tuple[str, dict[str, Any]]]:
    if fmt in ("csv", "tsv"):
        yield from _parse_csv(lines, path, fmt, columns)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if fmt == "text" or (fmt == "jsonl-or-text" and not line.lstrip().startswith("{")):
            yield where, {text_field: line.rstrip("\r\n")}
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: malformed JSON ({exc.msg}, column {exc.colno})") from None
        except (RecursionError, ValueError) as exc:  # json's own limits, raised as other errors
            problem = "nested too deeply" if isinstance(exc, RecursionError) else "with a number too long to read"
            raise InputError(f"{where}: JSON {problem}") from None
        if not isinstance(raw, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        yield where, map_columns(raw, columns, where)


def _parse_csv(lines: Iterator[str], path: str, fmt: str, columns: dict[str, str]
               ) -> Iterator[tuple[str, dict[str, Any]]]:
    # csv's own field limit (128 KiB) is far below the input cap; raised (process-wide) to the cap
    if csv.field_size_limit() < MAX_INPUT_CHARS:
        csv.field_size_limit(MAX_INPUT_CHARS)
    reader = csv.DictReader(lines, delimiter="," if fmt == "csv" else "\t")
    try:
        header = reader.fieldnames or []
        for column in columns.values():
            if column not in header:
                raise InputError(f"{path}: no column {column!r}; the columns are: {', '.join(header)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:  # more fields than the header names: a comma in an unquoted text, most likely
                raise InputError(f"{where}: {len(header) + len(row[None])} fields where the header has "
                                 f"{len(header)}; quote a field that contains a {'comma' if fmt == 'csv' else 'tab'}")
            yield where, map_columns(row, columns)
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: malformed {fmt.upper()} ({exc})") from None


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
