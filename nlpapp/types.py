"""Plain data types shared by the core and the plugins. Nothing heavy is imported here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .head import Head


# The old name of ``nlpapp.head.Head`` (the built-in head names), kept for plugins written
# before heads were registered: ``ModelFamily.CAUSAL_LM == "causal-lm"``.
ModelFamily = Head


@dataclass(frozen=True)
class ModelPreset:
    """A named model a plugin makes available, e.g. an embedded default.

    ``locate`` returns the local path of the weights (a folder or a ``.gguf`` file);
    it is called only when the model is loaded, so registering stays cheap.
    """

    name: str
    family: str  # the head its weights have (``nlpapp.head.Head``), shown by ``nlpapp models``
    description: str
    source: str  # where the weights come from (package, upstream repo)
    license: str
    locate: Callable[[], str]
    sha256: str | None = None  # of a single weights file, verified before first conversion
    notes: str = ""  # plain words on what the model is good and bad at

    @property
    def head(self) -> str:
        """The head its weights have (the field keeps its first name, ``family``, so plugins
        that pass it by keyword keep working)."""
        return str(self.family)


@dataclass(frozen=True)
class BackendSpec:
    """A backend a plugin runs models with (``register_backends``), chosen with ``--backend``.

    The plugin's ``load_model`` answers when ``options.backend`` is ``name``; for a registered
    model or a ``.gguf`` file it is then given the weights file itself (``file_suffixes``),
    not the PyTorch folder converted from it. Training always uses the PyTorch weights."""

    name: str
    description: str
    file_suffixes: tuple[str, ...] = ()  # weight files it reads as they are, e.g. (".gguf",)
    install: str = ""  # how to install what it needs, said when it is asked for but missing


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin makes available: a task kind and a way to open its records."""

    name: str
    task: str
    description: str
    open: Callable[[], Any]  # -> iterable of dict records


@dataclass(frozen=True)
class TaskFolder:
    """A folder of declarative task files (``NAME.yaml`` or ``NAME.toml``) shipped by a plugin."""

    name: str  # a label for listings, e.g. "translation examples"
    path: str


@dataclass(frozen=True)
class MetricSpec:
    """A metric: ``compute(predictions, references)`` with one prediction string and a list
    of reference strings per example, returning a ``nlpapp.evaluation.metrics.MetricResult``
    (scores, a signature of the settings, and a way to rescore a resample). ``language``:
    ``compute`` also takes ``language=`` (the target language, ISO 639-1), which the
    evaluator passes when the task's options name one (``target_lang``)."""

    name: str
    description: str
    compute: Callable[..., Any]
    higher_is_better: bool = True
    language: bool = False


@dataclass(frozen=True)
class LoraPreset:
    """A LoRA preset: which modules to adapt for a model architecture (``model_type``)."""

    name: str
    model_types: tuple[str, ...]
    target_modules: tuple[str, ...]
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05


# The old name, kept for plugins written before it was renamed: "adapter" elsewhere means a
# trained adapter, not a preset.
AdapterPreset = LoraPreset


@dataclass(frozen=True)
class TaskOption:
    """A task-specific option; the CLI turns it into ``--name`` on ``nlpapp run TASK``."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    inference_only: bool = False  # decoding settings and the like: not offered by ``nlpapp train``


@dataclass
class GenerationParams:
    """Decoding settings shared by every text-producing task."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 means greedy decoding
    top_p: float = 1.0
    seed: int | None = None
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0  # no n-gram of generated tokens twice (0: off); the prompt is exempt
    compile: bool = False  # static KV cache + a torch.compile'd decoding step
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific generate() kwargs
    # tokenizer attributes for this call only (e.g. NLLB's src_lang), restored afterwards so a
    # cached model's shared tokenizer is never left changed
    tokenizer_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .errors import NlpappError

        if self.max_new_tokens < 1:
            raise NlpappError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise NlpappError(f"temperature must be >= 0, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise NlpappError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise NlpappError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if not 0 < self.top_p <= 1:
            raise NlpappError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class Span:
    """An extractive answer: text, score in [0, 1] and character offsets in the context."""

    text: str
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model. Decided once at the edge (CLI or API) and passed down.

    ``trust_remote_code`` lets a model's own Python code run, whichever plugin loads it;
    for a hub id it also needs ``revision`` to be a commit hash, so the code that runs is
    the code that was reviewed. ``revision`` (a branch, tag or commit) applies to hub ids only.
    ``backend`` names the registered backend that runs the model (``BackendSpec``): ``auto``
    and ``torch`` are PyTorch through transformers; another name (``llamacpp``, from the
    nlpapp-llamacpp plugin) hands the model's file to the plugin that registered it.
    ``quantization`` (int8, int8-dynamic, int4, nf4, llm-int8) quantizes the linear layers as
    the weights load (``nlpapp optimize quantize`` saves the result)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    allow_pickle: bool = False
    trust_remote_code: bool = False
    revision: str | None = None
    backend: str = "auto"  # auto | torch | a plugin's backend name
    quantization: str | None = None  # a method of nlpapp.optimization.quantize, applied while loading
