"""The base class for task kinds. A task plugin subclasses ``TaskKind`` and registers an
instance through the ``register_task_kinds`` hook.

A task owns how records become model calls and how results come back; the core owns
loading, batching, ordering and output."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Sequence

from .errors import InputError, MissingFieldError, UnsupportedModelError
from .model import Model, StreamCallback
from .recipe import TrainingRecipe
from .options import GenerationOptions, NoOptions, TaskOptions, generation_options, option  # noqa: F401 - generation_options: its old home
from .types import GenerationParams, TaskOption

# The most characters one input field may hold; a longer one is refused (InputError) before a
# model loads. Twenty times what the largest windows read whole (128k tokens, about 0.5M
# characters), so nothing a model could read is refused; a longer input is a wrong file or
# column, and each input in flight costs up to 4 bytes a character (docs/security.md).
MAX_INPUT_CHARS = 10_000_000
SURROGATE = re.compile("[\ud800-\udfff]")


def not_utf8(text: str) -> str | None:
    """What is wrong with ``text`` if it holds bytes that were not UTF-8 (Python keeps them
    as surrogate escapes in command-line arguments, and in stdin under some locales; a JSON
    ``\\ud800`` escape gives a lone surrogate): the byte and its offset (from 0); ``None``
    for good text."""
    found = SURROGATE.search(text)
    if found is None:
        return None
    code = ord(found.group())
    if not 0xDC80 <= code <= 0xDCFF:  # not an escaped byte: half of a UTF-16 pair, from a JSON escape
        return (f"not text: a lone surrogate \\u{code:04x} at character {found.start()} (half of a character "
                "written as a JSON \\u escape); write the whole character")
    return (f"not UTF-8 text: byte 0x{as_bytes(found.group())[0]:02x} at byte offset "
            f"{len(text[:found.start()].encode('utf-8', 'surrogateescape'))}; convert it to UTF-8")


def check_text(value: str, where: str, field: str) -> str:
    """``value``, or ``InputError`` naming ``where`` and ``field`` for text that is not UTF-8
    or longer than ``MAX_INPUT_CHARS``."""
    problem = not_utf8(value)
    if problem:
        raise InputError(f"{where}: field {field!r} is {problem}")
    if len(value) > MAX_INPUT_CHARS:
        raise InputError(f"{where}: field {field!r} has {len(value):,} characters; an input may hold "
                         f"at most {MAX_INPUT_CHARS:,} (split it into smaller inputs)")
    return value


def as_bytes(text: str) -> bytes:
    """``text`` as the bytes it came from, undecodable ones included."""
    try:
        return text.encode("utf-8", "surrogateescape")  # the undecodable bytes, as Python escaped them
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate: still invalid UTF-8 in its place


@dataclasses.dataclass
class TrainingContext:
    """What a task needs to turn one training example into features."""

    model: Model  # the Hugging Face model being trained (``.tokenizer``, ``.head``)
    head: str  # the head being trained (a classifier built on an encoder, say)
    max_length: int  # most tokens per feature
    options: TaskOptions  # the task's own options (its ``Options``), as for ``predict``
    label_ids: dict[str, int] = dataclasses.field(default_factory=dict)  # label name -> id, for heads with labels

    @property
    def family(self) -> str:
        """The old name of ``head``."""
        return self.head


class TaskKind:
    """A task kind: typed inputs and outputs, the heads it can use, its options, and how
    inputs become model calls (``predict``, or the stages of ``nlpapp.TextToTextTask`` and
    its siblings) and training features (``training_features``). Register an instance
    through ``register_task_kinds``; the core owns loading, batching, ordering and output."""

    name: ClassVar[str]  # transformers' task name where there is one, e.g. "text-classification"
    aliases: ClassVar[tuple[str, ...]] = ()  # other names it answers to (shown by ``nlpapp tasks``)
    description: ClassVar[str]
    heads: ClassVar[tuple[str, ...]]  # registered head names it can use, in order of preference
    default_model: ClassVar[str]  # a registered model alias
    Input: ClassVar[type]  # a dataclass; its first field is the main text
    Output: ClassVar[type]  # a dataclass
    Options: ClassVar[type[TaskOptions]] = NoOptions  # a TaskOptions dataclass: the task's own options
    streams: ClassVar[bool] = False  # can stream a single input's output to the terminal
    notes: ClassVar[str] = ""  # plain words on how well the default model does this task
    target_fields: ClassVar[tuple[str, ...]] = ()  # what a training example adds to the input
    metrics: ClassVar[tuple[str, ...]] = ()  # registered metric names ``nlpapp eval`` uses by default
    recipe: ClassVar[TrainingRecipe] = TrainingRecipe()  # training defaults (see ``training_recipe``)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "families" in cls.__dict__ and "heads" not in cls.__dict__:  # the name before heads
            cls.heads = tuple(str(f) for f in cls.__dict__["families"])
        legacy = cls.__dict__.get("options")  # plugins written before ``Options``
        if isinstance(legacy, (tuple, list)) and "Options" not in cls.__dict__:  # TaskOption tuples
            cls.Options = _options_class(cls.__name__, legacy)
        elif isinstance(legacy, type) and issubclass(legacy, TaskOptions) and "Options" not in cls.__dict__:
            cls.Options = legacy

    def parse_options(self, values: Any = None, where: str = "") -> TaskOptions:
        """This task's ``Options`` from a mapping (or an instance); unknown names and bad
        values raise ``OptionError`` naming the option. ``where`` prefixes the message."""
        return self.Options.parse(values, where or f"task {self.name!r}: ")

    @property
    def input_fields(self) -> tuple[str, ...]:
        """The ``Input`` dataclass's field names; the first is the main text."""
        return tuple(f.name for f in dataclasses.fields(self.Input))

    @property
    def text_fields(self) -> tuple[str, ...]:
        """The required string fields: they must be present and non-empty."""
        return tuple(f.name for f in dataclasses.fields(self.Input)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)

    def make_input(self, record: dict[str, Any], where: str = "input") -> Any:
        """Build a typed input from a record, or raise ``InputError`` saying what is wrong: a
        missing (``MissingFieldError``), empty or non-text field, text that is not UTF-8, or a field
        over ``MAX_INPUT_CHARS``."""
        values = {}
        for f in dataclasses.fields(self.Input):
            if f.name in record and record[f.name] is not None:
                value = record[f.name]
                if not isinstance(value, str):
                    raise InputError(f"{where}: field {f.name!r} must be text, got {type(value).__name__}")
                values[f.name] = check_text(value, where, f.name)
        missing = [name for name in self.text_fields if name not in values]
        if missing:
            raise MissingFieldError(f"{where}: missing field{'s' * (len(missing) > 1)} "
                                    f"{', '.join(map(repr, missing))} for task {self.name!r}", self, missing)
        for name in self.text_fields:
            if not values[name].strip():
                raise InputError(f"{where}: field {name!r} is empty")
        return self.Input(**values)

    def make_example(self, record: dict[str, Any], where: str = "input") -> tuple[Any, dict[str, str]]:
        """A training example: the typed input and its non-empty target fields; ``InputError``
        (``MissingFieldError`` for an absent field) as ``make_input`` raises it, for targets too."""
        try:
            item = self.make_input(record, where)
        except MissingFieldError as exc:  # so a whole-file check can name missing targets too
            exc.targets = tuple(name for name in self.target_fields if record.get(name) is None)
            raise
        targets = {}
        for name in self.target_fields:
            value = record.get(name)
            if value is None:
                raise MissingFieldError(f"{where}: missing target field {name!r} for training task {self.name!r}",
                                        self, targets=[name])
            value = check_text(str(value), where, name)
            if not value.strip():
                raise InputError(f"{where}: target field {name!r} is empty")
            targets[name] = value
        return item, targets

    def references(self, record: dict[str, Any], where: str = "input") -> list[str]:
        """The reference strings of a labelled record for ``nlpapp eval``: its first target
        field, a string or a list of alternatives (SQuAD's ``{"text": [...]}`` too); an integer
        is read as its text (a class id). Raises ``InputError`` for none, for any other value
        that is not text (a number, true/false, null in a list, an object), for text that is
        not UTF-8 and for one over ``MAX_INPUT_CHARS``."""
        field = self.target_fields[0]
        value = record.get(field)
        if isinstance(value, dict) and "text" in value:  # SQuAD's {"text": [...], "answer_start": [...]}
            value = value["text"]
        found = value if isinstance(value, list) else [value] if value is not None else []
        for n, reference in enumerate(found, start=1):
            # an integer is a class id (GLUE's "label": 1); anything else that is not text is a wrong column
            if not isinstance(reference, str) and (isinstance(reference, bool) or not isinstance(reference, int)):
                which = f"reference {n} in field {field!r}" if isinstance(value, list) else f"field {field!r}"
                raise InputError(f"{where}: {which} must be text, got {type(reference).__name__} {reference!r:.40}")
        found = [check_text(str(r), where, field) for r in found if str(r).strip()]
        if not found:
            raise InputError(f"{where}: no reference in field {field!r} (map it with --columns {field}=COLUMN)")
        return found

    def prediction_text(self, output: Any) -> str:
        """The string of an output that metrics compare with the references."""
        return str(getattr(output, dataclasses.fields(output)[0].name))

    def training_head(self, base: str) -> str:
        """The head to train, given the base model's; a task that puts a new head on an
        encoder (a classifier, a tagger) answers with that head."""
        return base

    def training_recipe(self, head: str) -> TrainingRecipe:
        """The training defaults for training ``head`` (see ``TrainingRecipe``); the task's
        ``recipe`` unless a task overrides this to differ per head."""
        return self.recipe

    def label_names(self, targets: dict[str, str]) -> list[str]:
        """The label names in one example's targets, for heads that ``uses_labels``: the
        first target field's value; a tagging task answers with one tag per word."""
        return [targets[self.target_fields[0]]]

    def training_features(self, item: Any, targets: dict[str, str], ctx: TrainingContext) -> list[dict[str, Any]]:
        """Turn one example into features (``nlpapp.training.features`` has one builder per
        head). Tasks that can be trained override this."""
        raise UnsupportedModelError(f"task {self.name!r} cannot be trained")

    def input_length(self, item: Any) -> int:
        """A cheap size estimate used to sort inputs into batches of similar length."""
        return sum(len(getattr(item, name)) for name in self.text_fields)

    def check_model(self, model: Model) -> None:
        """Raise ``UnsupportedModelError`` for a model whose head is not in ``heads``."""
        if model.head not in self.heads:
            hint = (f"; train an adapter on it (nlpapp train {self.name}) or pass --model with a checkpoint that "
                    "has one" if self.training_head(model.head) in self.heads else "")
            raise UnsupportedModelError(
                f"task {self.name!r} cannot use model {model.name!r} (its head: {model.head}); "
                f"it needs one of these heads: {', '.join(self.heads)}{hint}")

    def predict(self, model: Model, inputs: Sequence[Any], options: TaskOptions,
                stream: StreamCallback | None = None) -> list[Any]:
        """Return one ``Output`` per input, in the same order."""
        raise NotImplementedError

    def render(self, output: Any) -> str:
        """The text shown on the terminal for one output."""
        return str(dataclasses.asdict(output))

    def describe(self) -> dict[str, Any]:
        """What ``nlpapp tasks --json`` shows of the task."""
        return {"name": self.name, "aliases": list(self.aliases), "description": self.description,
                "heads": list(self.heads), "default_model": self.default_model,
                "inputs": list(self.input_fields), "options": [f.name for f in self.Options.fields()],
                "notes": self.notes}


def _options_class(task_class: str, declared: Sequence[TaskOption]) -> type[TaskOptions]:
    """A ``TaskOptions`` dataclass from ``TaskOption`` declarations (plugins written before
    options were typed)."""
    fields = [(o.name, o.type | None if o.default is None else o.type,
               option(o.default, o.help, choices=o.choices, inference_only=o.inference_only)) for o in declared]
    return dataclasses.make_dataclass(f"{task_class}Options", fields, bases=(TaskOptions,), frozen=True)


def generation_params(options: Any) -> GenerationParams:
    """Decoding settings from a task's options (``GenerationOptions``, or a mapping)."""
    if isinstance(options, GenerationOptions):
        return options.generation_params()
    return GenerationParams(max_new_tokens=options.get("max_new_tokens", 128),
                            temperature=options.get("temperature", 0.0),
                            top_p=options.get("top_p", 1.0), seed=options.get("seed"),
                            repetition_penalty=options.get("repetition_penalty", 1.0),
                            compile=options.get("compile", False))
