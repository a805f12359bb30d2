"""Click parameters derived from dataclass fields, so a setting is declared once — on the
config or options dataclass, with its help text — and the command line follows it."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import click

PREFIX = "opt_"  # task options arrive in a command's keyword arguments as opt_<name>


def field_type(cls: type, name: str) -> Any:
    """The field's type with ``None`` taken out of ``X | None``."""
    import types

    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def options_from(cls: type, fields: list[dataclasses.Field]) -> list[click.Parameter]:
    """One ``--flag`` per field: booleans become ``--x/--no-x`` switches, ``choices``
    a ``click.Choice``. Click's own default is ``None``, so only what the user typed
    reaches the dataclass, whose defaults (shown in ``--help``) are the only ones."""
    params: list[click.Parameter] = []
    for f in fields:
        flag = "--" + f.name.replace("_", "-")
        kind = field_type(cls, f.name)
        help_text = f.metadata.get("help", "")
        default = None if f.default is dataclasses.MISSING else f.default
        if kind is bool:
            params.append(click.Option([f"{flag}/--no-{flag[2:]}", PREFIX + f.name], default=None,
                                       help=help_text, show_default=("on" if default else "off")))
            continue
        choices = f.metadata.get("choices")
        params.append(click.Option([flag, PREFIX + f.name], type=click.Choice(choices) if choices else kind,
                                   default=None, help=help_text,
                                   show_default=str(default) if default is not None else False))
    return params


def given(kw: dict[str, Any], fields: list[dataclasses.Field]) -> dict[str, Any]:
    """Pop the ``opt_`` values of ``fields`` from ``kw``; keep the ones the user gave."""
    values = {f.name: kw.pop(PREFIX + f.name, None) for f in fields}
    return {name: value for name, value in values.items() if value is not None}


def config_options(cls: type, skip: tuple[str, ...] = ()) -> list[click.Parameter]:
    """One option per field of a config dataclass (``nlpapp.configs.setting`` fields) that
    is meant for the command line: lists repeat (or take ``A,B`` with ``comma``), booleans
    are flags. Values arrive under the field's name; ``None`` (or an empty repeat) means
    "not given", so the dataclass default applies."""
    params: list[click.Parameter] = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", False) or f.name in skip:
            continue
        names = [*meta.get("flags", ()), "--" + f.name.replace("_", "-"), f.name]
        kind = field_type(cls, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = str(default) if default not in (None, False) and not isinstance(default, list) else False
        common = {"help": meta.get("help", ""), "metavar": meta.get("metavar") or None,
                  "required": meta.get("required", False)}
        if kind is bool:
            params.append(click.Option(names, is_flag=True, default=None, help=common["help"]))
            continue
        if meta.get("minimum") is not None and kind is int:
            params.append(click.Option(names, type=click.IntRange(min=meta["minimum"]), default=None,
                                       show_default=shown, **common))
        elif typing.get_origin(kind) is list and not meta.get("comma"):
            params.append(click.Option(names, multiple=True, **common))
        else:
            choices = meta.get("choices")
            text = typing.get_origin(kind) is list or meta.get("pairs")  # A,B or K=V,... read by the config
            click_type = click.Choice(choices) if choices else (str if text else kind)
            unset = {} if common["required"] else {"default": None}  # click checks required only when unset
            params.append(click.Option(names, type=click_type, show_default=shown, **unset, **common))
    return params


def config_values(cls: type, kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the values of ``cls``'s command-line fields from ``kw``; keep those given."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", False) or f.name not in kw:
            continue
        value = kw.pop(f.name)
        if isinstance(value, tuple):
            value = list(value) or None
        elif f.metadata.get("comma") and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if value is not None:
            values[f.name] = value
    return values
