"""Typed task options: each task declares its options as a dataclass, one field per option
with its help text and rules, as peft's ``LoraConfig`` does. Options are parsed once, at
the edge — from the CLI, a Python call or a task file — and an unknown or ill-typed option
fails there with one line that names it (and a did-you-mean for a misspelling).

::

    @dataclass(frozen=True)
    class SummarizationOptions(GenerationOptions):
        length: str = option("sentence", "How long a summary.", choices=("headline", "sentence"))
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import typing
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from .errors import NlpappError


class OptionError(NlpappError, ValueError):
    """An unknown option, or a value of the wrong type or outside its rules. ``option`` is
    the option's name and ``problem`` what is wrong, so the CLI can name its ``--flag``."""

    def __init__(self, option: str, problem: str, where: str = ""):
        super().__init__(f"{where}option {option!r} {problem}")
        self.option, self.problem = option, problem


def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None, inference_only: bool = False,
           check: Callable[[Any], str | None] | None = None) -> Any:
    """A task option field. ``choices`` limits a string; ``inference_only`` keeps it off
    ``nlpapp train`` (decoding settings); ``check(value)`` returns what is wrong, or ``None``."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices,
                                                        "inference_only": inference_only, "check": check})


@dataclass(frozen=True)
class TaskOptions:
    """Base class of a task's options. Instances are immutable and already checked: each
    value has its field's type, is one of its ``choices`` and passes its ``check``."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(f.name, value, hints[f.name]))
            choices, check = f.metadata.get("choices"), f.metadata.get("check")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                raise OptionError(f.name, f"must be one of {', '.join(choices)}, got {value!r}")
            problem = check(value) if check and value is not None else None
            if problem:
                raise OptionError(f.name, f"{problem}, got {value!r}")

    @classmethod
    def parse(cls, values: Mapping[str, Any] | "TaskOptions" | None, where: str = "") -> "TaskOptions":
        """Options from a mapping (``max_new_tokens``, or ``max-new-tokens`` as on the command
        line); unknown names fail with a did-you-mean. ``where`` prefixes the message."""
        if isinstance(values, cls):
            return values
        if isinstance(values, TaskOptions):
            values = values.as_dict()
        names = [f.name for f in dataclasses.fields(cls)]
        given = {str(k).replace("-", "_"): v for k, v in (values or {}).items()}
        for name in given:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"the options are: {', '.join(names)}" if names else "this task takes no options")
                raise OptionError(name, f"is unknown; {hint}", where)
        try:
            return cls(**given)
        except OptionError as exc:
            raise OptionError(exc.option, exc.problem, where) from None

    @classmethod
    def fields(cls, training: bool = False) -> list[dataclasses.Field]:
        """The option fields; with ``training``, those that shape training examples."""
        return [f for f in dataclasses.fields(cls) if not (training and f.metadata.get("inference_only"))]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def get(self, name: str, default: Any = None) -> Any:
        """Dict-style access, for task code written when options were a dict."""
        return getattr(self, name, default)


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against the field's type (``X | None`` admits ``None``); an integer
    is taken where a number is wanted, but not nan or infinity. Nothing else is converted:
    "2" is not 2. Raises ``OptionError`` naming the option."""
    args = typing.get_args(annotation)
    kinds = [a for a in args if a is not type(None)] if args else [annotation]
    if value is None:
        if type(None) in args:
            return None
        raise OptionError(name, "needs a value")
    kind = kinds[0] if len(kinds) == 1 else Any
    if kind is Any:
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        # nan slips past every comparison a check makes, and inf past most: neither is a setting
        if not (math.isfinite(value) if isinstance(value, float) else abs(value) <= sys.float_info.max):
            raise OptionError(name, f"must be a finite number, got {value!r}")
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        if kind is str:
            from .task import not_utf8

            problem = not_utf8(value)
            if problem:
                raise OptionError(name, f"is {problem}")
        return value
    raise OptionError(name, f"must be {_type_name(kind)}, got {value!r}")


def _type_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(kind, kind.__name__)


def _at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f"must be at least {minimum}"


@dataclass(frozen=True)
class NoOptions(TaskOptions):
    """For a task without options."""


@dataclass(frozen=True)
class GenerationOptions(TaskOptions):
    """The decoding options every text-producing task offers (transformers' ``generate``)."""

    default_max_new_tokens: ClassVar[int] = 128

    max_new_tokens: int = option(128, "Most tokens to generate per input.", inference_only=True,
                                 check=_at_least(1))
    repetition_penalty: float = option(1.0, "Above 1 discourages repeating tokens already present; 1 turns it off.",
                                       inference_only=True, check=lambda v: None if v > 0 else "must be > 0")
    temperature: float = option(0.0, "Sampling temperature; 0 decodes greedily.", inference_only=True,
                                check=lambda v: None if v >= 0 else "must be >= 0")
    top_p: float = option(1.0, "Nucleus sampling mass (with --temperature > 0).", inference_only=True,
                          check=lambda v: None if 0 < v <= 1 else "must be in (0, 1]")
    no_repeat_ngram_size: int = option(
        0, "Never generate the same N tokens twice in one output (0: off). Unlike --repetition-penalty, "
           "text copied from the input is not penalised.", inference_only=True, check=_at_least(0))
    seed: int | None = option(None, "Random seed, for repeatable sampling.", inference_only=True)
    compile: bool = option(False, "Decode with a static KV cache and a torch.compile'd step: faster per token "
                                  "after a one-time compile (about a minute on CPU), so for long runs.",
                           inference_only=True)

    def generation_params(self) -> Any:
        from .types import GenerationParams

        return GenerationParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                seed=self.seed, repetition_penalty=self.repetition_penalty,
                                no_repeat_ngram_size=self.no_repeat_ngram_size, compile=self.compile)


def generation_options(**defaults: Any) -> type[GenerationOptions]:
    """``GenerationOptions`` with other defaults (``max_new_tokens=64``: a summary needs
    fewer tokens than a chat answer); subclass the result to add the task's own options."""
    hints = typing.get_type_hints(GenerationOptions)
    known = {f.name: f for f in dataclasses.fields(GenerationOptions)}
    unknown = sorted(set(defaults) - set(known))
    if unknown:
        raise TypeError(f"generation_options() got unknown option {unknown[0]!r}")
    fields = [(name, hints[name], dataclasses.field(default=value, metadata=known[name].metadata))
              for name, value in defaults.items()]
    suffix = "".join(f"_{k}_{v}" for k, v in defaults.items()).replace(".", "_")
    return dataclasses.make_dataclass(f"GenerationOptions{suffix}", fields, bases=(GenerationOptions,), frozen=True)
