"""The typed configs the library verbs take and the typed results they return
(``nlpapp.Runtime``). Each config field carries its help text; the CLI builds its options
from these fields, so a setting is declared once. ``TrainConfig`` lives with the training
code (``nlpapp.training.config``) and follows the same rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NlpappError


def setting(default: Any = dataclasses.MISSING, help: str = "", *, flags: tuple[str, ...] = (), metavar: str = "",
            default_factory: Any = dataclasses.MISSING, cli: bool = True, choices: tuple[str, ...] | None = None,
            comma: bool = False, minimum: int | None = None, required: bool = False, pairs: bool = False) -> Any:
    """A config field with its help text, as peft's configs have. ``flags`` are extra
    command-line names (``-o``); ``cli=False`` keeps it off the command line (the CLI sets
    it another way); ``choices`` limits a string; ``comma`` reads a list as ``A,B`` on the
    command line instead of a repeated option; ``minimum`` bounds an integer on the command
    line; ``required`` makes the option required there; ``pairs`` reads a mapping as
    ``KEY=VALUE,...`` text (on the command line, and from Python too; see ``parse_pairs``)."""
    metadata = {"help": help, "flags": flags, "metavar": metavar, "cli": cli, "choices": choices, "comma": comma,
                "minimum": minimum, "required": required, "pairs": pairs}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def check_types(config: Any) -> None:
    """Each field's value against its type, as the command line would have checked it: an
    integer where a number is wanted is fine, a lone string where a list is wanted becomes
    a list of one; anything else (nan or infinity for a number, too) raises ``NlpappError``
    naming the option."""
    import types
    import typing

    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if f.metadata.get("pairs") and getattr(config, f.name) is not None:
            setattr(config, f.name, parse_pairs(getattr(config, f.name), f"--{f.name.replace('_', '-')}",
                                                f.metadata.get("metavar") or "KEY=VALUE,..."))
        value, hint = getattr(config, f.name), hints[f.name]
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            continue
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
        kind = next(a for a in args if a is not type(None)) if optional else hint
        origin = typing.get_origin(kind)
        if origin is list:
            if isinstance(value, str):
                setattr(config, f.name, [value])
                continue
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif origin is dict or kind is Any:
            ok = isinstance(value, dict) if origin is dict else True
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and not _finite(value):  # nan passes every bound check; inf most
                raise NlpappError(f"--{f.name.replace('_', '-')} must be a finite number, got {value!r}")
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            wanted = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
                kind, "a list of text" if origin is list else "a mapping" if origin is dict else str(kind))
            raise NlpappError(f"--{f.name.replace('_', '-')} must be {wanted}, got {value!r}")


def _finite(value: float) -> bool:
    import math
    import sys

    return math.isfinite(value) if isinstance(value, float) else abs(value) <= sys.float_info.max


def parse_pairs(value: Any, option: str, form: str = "KEY=VALUE,...") -> dict[str, str]:
    """A mapping of text to text from ``"A=a,B=b"`` or from a mapping (a YAML or TOML file's,
    or a dict given in Python); numbers are taken as their text (YAML reads ``0: negative``
    with an integer key). Raises ``NlpappError`` naming ``option`` and the expected ``form``
    for a part without ``=``, an empty side, a key given twice or a value that is not text."""
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            if not part.strip():
                continue
            key, sep, item = part.partition("=")
            if not sep or not key.strip() or not item.strip():
                raise NlpappError(f"{option}: {part.strip()!r} is not {form.split(',')[0]}; write {option} {form}")
            pairs.append((key.strip(), item.strip()))
    elif isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in (key, item)):
                raise NlpappError(f"{option} must map text to text ({form}), got {key!r}: {item!r}")
            if not str(key).strip() or not str(item).strip():
                raise NlpappError(f"{option}: empty name in {key!r}: {item!r}; write {option} {form}")
            pairs.append((str(key).strip(), str(item).strip()))
    else:
        raise NlpappError(f"{option} must be {form} text or a mapping, got {value!r}")
    mapping: dict[str, str] = {}
    for key, item in pairs:
        if key in mapping and mapping[key] != item:
            raise NlpappError(f"{option}: {key!r} is given twice ({mapping[key]!r} and {item!r}); give it once")
        mapping[key] = item
    return mapping


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise NlpappError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


@dataclass
class EvalConfig:
    """``Runtime.evaluate``: score a task on labelled data, with bootstrap intervals."""

    task: str = setting(help="Task kind or task file name.", cli=False)
    data: str = setting("", "Labelled examples: a .jsonl/.csv/.tsv file or a registered dataset (nlpapp datasets); "
                            ".txt for perplexity.", metavar="FILE|DATASET")
    model: str | None = setting(None, "Model: a registered name, folder, .gguf file or hub id [default: the "
                                      "adapter's base, else the task's default].", flags=("-m",), metavar="SPEC")
    adapter: str | None = setting(None, "Evaluate with this adapter (a folder or a name from nlpapp adapters list).",
                                  flags=("-a",), metavar="NAME|DIR")
    metrics: list[str] = setting(help="Registered metric (repeatable) [default: the task's]; 'perplexity' on raw text.",
                                 default_factory=list, flags=("--metric",), metavar="NAME")
    columns: dict[str, str] = setting(help="Task field -> column in the data.", default_factory=dict, cli=False)
    options: dict[str, Any] = setting(help="The task's own options.", default_factory=dict, cli=False)
    label_map: dict[str, str] = setting(help="Rename the model's labels to the data's before scoring, e.g. "
                                             "NEGATIVE=negative,POSITIVE=positive (for a classifier whose labels "
                                             "are named otherwise).", default_factory=dict,
                                        metavar="MODEL=DATA,...", pairs=True)
    batch_size: int = setting(8, "Inputs per model call.", minimum=1)
    bootstrap: int = setting(1000, "Resamples for the 95% intervals; 0: none.", metavar="N", minimum=0)
    bootstrap_seed: int = setting(0, "Seed of the resampling.")
    limit: int | None = setting(None, "Evaluate the first N examples only.", metavar="N", minimum=1)
    output: str | None = setting(None, "Write the predictions as JSONL (with each example's other columns, e.g. its "
                                       "id); FILE is replaced only when the evaluation succeeds.",
                                 flags=("-o",), metavar="FILE")
    task_file: str | None = setting(None, "The task file the settings came from (for the run record).", cli=False)

    def __post_init__(self) -> None:
        check_types(self)
        if not self.data:
            raise NlpappError("no data to evaluate: pass --data FILE or a registered dataset")
        _positive("batch_size", self.batch_size)
        _positive("limit", self.limit)
        if self.bootstrap < 0:
            raise NlpappError(f"--bootstrap must be >= 0, got {self.bootstrap}")
        if self.output is not None and self.metrics == ["perplexity"]:
            raise NlpappError("--output writes predictions; perplexity has none")


@dataclass
class CompareConfig(EvalConfig):
    """``Runtime.compare``: two systems on the same examples, with paired bootstrap p-values."""

    systems: list[str] = setting(help="Two systems: 'base', an adapter, or a model.", default_factory=list,
                                 cli=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.systems) != 2:
            raise NlpappError("--compare takes two systems, e.g. --compare base,adapters/headlines")
        if self.output is not None:
            raise NlpappError("--output writes one system's predictions; it does not go with --compare")


@dataclass
class RunFileConfig:
    """``Runtime.run_file``: a task over every record of a file (or a registered dataset),
    validated whole before a model loads, streamed, written whole or not at all."""

    task: str = setting(help="Task kind or task file name.", cli=False)
    input: str = setting("-", "Read inputs from a .jsonl, .csv, .tsv or .txt file ('-' for stdin), or a registered "
                              "dataset.", flags=("-i",), metavar="FILE")
    output: str | None = setting(None, "Write predictions as JSONL, replacing FILE only when all succeed.",
                                 flags=("-o",), metavar="FILE")
    model: str | None = setting(None, "Registered name, folder, .gguf file or hub id [default: the adapter's base, "
                                      "else the task's].", flags=("-m",), metavar="SPEC")
    adapter: str | None = setting(None, "A trained adapter (folder or name from nlpapp adapters list); its base is "
                                        "the default model.", flags=("-a",), metavar="NAME|DIR")
    options: dict[str, Any] = setting(help="The task's own options.", default_factory=dict, cli=False)
    columns: dict[str, str] = setting(help="Task field -> column.", default_factory=dict, cli=False)
    constants: dict[str, str] = setting(help="Task field -> one value for every record.", default_factory=dict,
                                        cli=False)
    batch_size: int = setting(8, "Inputs per model call.", minimum=1)
    task_file: str | None = setting(None, "The task file the settings came from (for the run record).", cli=False)

    def __post_init__(self) -> None:
        check_types(self)
        _positive("batch_size", self.batch_size)


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    value: float
    ci95: tuple[float, float] | None  # the 95% bootstrap interval, or None without resampling
    signature: str  # every setting that changes the number (sacrebleu's idea, for every metric)
    metric: str  # the registered metric that computed it
    higher_is_better: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Score":
        return cls(d["value"], tuple(d["ci95"]) if d.get("ci95") else None, d["signature"], d["metric"],
                   d.get("higher_is_better", True))


@dataclass
class RunSummary:
    """What every verb that records a run returns besides its own result."""

    run: str | None = None  # the run record's id (nlpapp runs show ID)
    report: str | None = None  # its report.html, for eval and train


@dataclass
class EvalResult(RunSummary):
    task: str = ""
    data: str = ""
    model: str = ""
    adapter: str | None = None
    examples: int = 0
    seconds: float = 0.0
    scores: dict[str, Score] = field(default_factory=dict)
    predictions: list[dict[str, Any]] = field(default_factory=list)  # prediction, references, other columns
    confusion: dict[str, dict[str, int]] | None = None  # gold -> predicted -> count, for classification
    bootstrap_rounds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class SystemScores:
    system: str
    scores: dict[str, Score]
    seconds: float


@dataclass
class CompareResult(RunSummary):
    task: str = ""
    data: str = ""
    examples: int = 0
    systems: list[SystemScores] = field(default_factory=list)
    paired_p_values: dict[str, float] = field(default_factory=dict)  # score -> p (the better one by chance)
    bootstrap_rounds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass
class TrainResult(RunSummary):
    output: str = ""  # the adapter folder (or the model folder, with full)
    manifest: dict[str, Any] = field(default_factory=dict)  # nlpapp-adapter.json as written

    @property
    def scores(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def verdict(self) -> dict[str, Any] | None:
        """The adapter against the base on the held-out examples (``score``, ``base``,
        ``adapter``, ``difference``, ``ci95``, ``p_value``, ``improved``); ``None`` when nothing
        was held out."""
        return self.manifest.get("verdict")

    def as_dict(self) -> dict[str, Any]:
        return {**self.manifest, "output": self.output, "scores": self.scores, "run": self.run, "report": self.report}


@dataclass
class RunFileResult(RunSummary):
    outputs: int = 0  # records predicted
    output: str | None = None  # the JSONL written


@dataclass(frozen=True)
class MergeResult:
    adapter: str
    output: str
    max_abs_diff: float  # merged vs unmerged outputs on the probe texts
    probe_texts: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    path: Path
    kind: str  # lora | full
    task: str
    head: str
    base_model: str
    labels: tuple[str, ...]
    scores: dict[str, Any]  # steps, final_loss, eval_* at the end of training
    manifest: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "kind": self.kind, "task": self.task, "head": self.head,
                "base_model": self.base_model, "labels": list(self.labels), "scores": self.scores}


def _as_dict(result: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Score):
            return {"value": value.value, "ci95": list(value.ci95) if value.ci95 else None,
                    "signature": value.signature, "metric": value.metric, "higher_is_better": value.higher_is_better}
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(result)
