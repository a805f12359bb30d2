"""Declarative tasks: a YAML or TOML file that binds a task kind to a dataset, columns,
options (prompt settings), metrics, a default model, LoRA settings and a label map (the
model's label names -> the data's), so a task variant is a file, not code. ``nlpapp run|train|eval NAME`` finds ``NAME.yaml`` (or ``.yml``,
``.toml``) in ``$NLPAPP_TASKS`` (folders separated by ``:``), then ``./tasks``, then the
folders plugins register (``register_task_folders``).

Data may name a registered dataset, or a path that uses ``${VAR}`` or ``${VAR:-default}``,
so a task can point at data that lives outside the repository."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

from .errors import NlpappError

TASKS_ENV = "NLPAPP_TASKS"
SUFFIXES = (".yaml", ".yml", ".toml")
KEYS = {"kind", "description", "data", "columns", "options", "metrics", "model", "lora", "label_map"}
LORA_KEYS = {"r", "alpha", "dropout", "target_modules"}
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@dataclass
class TaskFile:
    name: str
    path: Path
    kind: str  # a registered task kind
    description: str = ""
    data: dict[str, str] = field(default_factory=dict)  # train / eval / run -> path (unexpanded)
    columns: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    model: str | None = None
    lora: dict[str, Any] = field(default_factory=dict)
    label_map: dict[str, str] = field(default_factory=dict)  # model label -> data label (nlpapp.labels)

    def data_path(self, split: str, datasets: Collection[str] = ()) -> str:
        """The data for ``split``: a name in ``datasets`` (the registered ones) as it is, else
        a file with variables expanded. A relative path is taken from the folder the user
        runs nlpapp in, where ``./tasks/x.yaml`` users expect it; only when it is not there
        and is beside the task file (data shipped with a plugin's task files) from there."""
        if split not in self.data:
            raise NlpappError(f"task file {self.path} has no data.{split}; pass --data")
        if self.data[split] in datasets:
            return self.data[split]
        def expand(match: re.Match) -> str:
            value = os.environ.get(match.group(1)) or match.group(2)
            if value is None:  # the template says where the data is expected; the file's path would not
                raise NlpappError(f"task {self.name!r} needs the environment variable {match.group(1)} for its "
                                  f"data.{split} ({self.data[split]}); set it, or pass --data FILE")
            return value
        path = Path(VARIABLE.sub(expand, self.data[split])).expanduser()
        beside = self.path.parent / path
        if path.is_absolute() or path.exists() or not beside.exists():
            return str(path)
        return str(beside)


def search_path(plugin_folders: Sequence[str] = ()) -> list[Path]:
    folders = [Path(p) for p in os.environ.get(TASKS_ENV, "").split(os.pathsep) if p]
    return folders + [Path.cwd() / "tasks"] + [Path(p) for p in plugin_folders]


def find(name: str, plugin_folders: Sequence[str] = ()) -> TaskFile | None:
    for folder in search_path(plugin_folders):
        for suffix in SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return load(path)
    return None


def files(plugin_folders: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """``(name, path)`` of every task file, the one that ``find`` would use for each name."""
    found: dict[str, Path] = {}
    for folder in search_path(plugin_folders):
        if folder.is_dir():
            paths = [p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()]
            for path in sorted(paths, key=lambda p: SUFFIXES.index(p.suffix)):
                found.setdefault(path.stem, path)  # the first folder and suffix win, as in find()
    return sorted(found.items())


def available(plugin_folders: Sequence[str] = ()) -> list[str]:
    names = {p.stem for folder in search_path(plugin_folders) if folder.is_dir()
             for p in folder.iterdir() if p.suffix in SUFFIXES}
    return sorted(names)


def read_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    """A YAML (or, by suffix, TOML) file that must hold a mapping; one line on any problem."""
    try:
        if path.suffix == ".toml":
            import tomllib

            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            import yaml

            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NlpappError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # a syntax error in the user's file: say where
        raise NlpappError(f"cannot read {what} {path}: {exc}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise NlpappError(f"{what} {path} must be a mapping of keys")
    return raw


def load(path: Path) -> TaskFile:
    raw = read_mapping(path, "task file")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise NlpappError(f"task file {path}: unknown key {unknown[0]!r}; the keys are: {', '.join(sorted(KEYS))}")
    if "kind" not in raw:
        raise NlpappError(f"task file {path}: missing 'kind' (a task kind, see nlpapp tasks)")
    for key, kind in (("data", dict), ("columns", dict), ("options", dict), ("metrics", list), ("lora", dict)):
        if key in raw and not isinstance(raw[key], kind):
            raise NlpappError(f"task file {path}: '{key}' must be a {'mapping' if kind is dict else 'list'}")
    bad_lora = sorted(set(raw.get("lora", {})) - LORA_KEYS)
    if bad_lora:
        raise NlpappError(f"task file {path}: unknown lora key {bad_lora[0]!r}; use {', '.join(sorted(LORA_KEYS))}")
    from .labels import parse_map

    return TaskFile(name=path.stem, path=path, kind=str(raw["kind"]), description=str(raw.get("description", "")),
                    data={k: str(v) for k, v in raw.get("data", {}).items()},
                    columns={k: str(v) for k, v in raw.get("columns", {}).items()},
                    options=dict(raw.get("options", {})), metrics=[str(m) for m in raw.get("metrics", [])],
                    model=raw.get("model"), lora=dict(raw.get("lora", {})),
                    label_map=parse_map(raw.get("label_map"), f"task file {path}: label_map"))
