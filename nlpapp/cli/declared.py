"""Commands for declarative tasks (``tasks/NAME.yaml``): the task kind's own command, with
the file's data, columns, options, metrics, model and LoRA settings as defaults that
anything given on the command line overrides."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from ..declarative import TaskFile


def resolve(name: str) -> tuple[Any, TaskFile | None]:
    """A registered task kind, or the kind named by task file ``name`` and the file."""
    from .. import declarative
    from ..errors import UnknownNameError
    from .state import state

    registry = state().plugins.registries.tasks
    if name in registry:
        return registry.get(name), None
    task_file = declarative.find(name, plugin_folders())
    if task_file is None:
        raise UnknownNameError("task", name, registry.known() + declarative.available(plugin_folders()))
    task = registry.get(task_file.kind)
    task.parse_options(task_file.options, where=f"task file {task_file.path}: ")  # checked once, up front
    return task, task_file


def plugin_folders() -> list[str]:
    from .state import state

    return [folder.path for folder in state().plugins.registries.task_folders]


def data(task_file: TaskFile, split: str) -> str:
    """The task file's data for ``split``: a registered dataset name or a file path."""
    from .state import state

    return task_file.data_path(split, state().plugins.registries.datasets.names())


def names(trainable_only: bool = False) -> list[str]:
    from .. import declarative
    from .state import state

    registry = state().plugins.registries.tasks
    kinds = [t.name for t in registry if t.target_fields or not trainable_only]
    return sorted(set(kinds) | set(declarative.available(plugin_folders())))


def from_file(kw: dict[str, Any], task_file: TaskFile | None, defaults: dict[str, Any]) -> None:
    """Set each ``kw`` entry the user did not give on the command line from ``defaults``
    (values from the task file; a callable is called only when its value is used). The
    file's ``label_map`` is a default of every command that has ``--label-map`` (eval, train)."""
    if task_file is None:
        return
    if "label_map" in kw:
        defaults = {**defaults, "label_map": task_file.label_map or None}
    ctx = click.get_current_context()
    for name, value in defaults.items():
        if value is not None and ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            kw[name] = value() if callable(value) else value


def file_options(task_file: TaskFile | None, training: bool = False) -> dict[str, Any]:
    """The task file's ``options:`` (checked when the file was resolved); for training,
    those that shape the examples (decoding settings are left out)."""
    if task_file is None:
        return {}
    from .state import state

    fields = {f.name for f in state().plugins.registries.tasks.get(task_file.kind).Options.fields(training)}
    return {k: v for k, v in task_file.options.items() if k.replace("-", "_") in fields}


def columns(task_file: TaskFile | None, cli_columns: dict[str, str]) -> dict[str, str]:
    return {**(task_file.columns if task_file else {}), **cli_columns}
