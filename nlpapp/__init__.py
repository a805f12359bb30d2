"""nlpapp: a plugin-based NLP application framework.

Everything a user or a plugin author needs is importable from here (``__all__`` is the
whole public surface); importing it loads no torch::

    import nlpapp

    runtime = nlpapp.Runtime.create()
    [output] = runtime.run("sentiment", ["A wonderful film."])
"""

from __future__ import annotations

from .config import home as cache_dir
from .configs import (AdapterInfo, CompareConfig, CompareResult, EvalConfig, EvalResult, MergeResult, RunFileConfig,
                      RunFileResult, Score, SystemScores, TrainResult)
from .datasets import packaged_jsonl
from .errors import (InputError, ModelLoadError, NlpappError, UnknownNameError,
                     UnsupportedModelError)
from .head import IGNORE, Head, ModelHead
from .hookspecs import HOOK_API_VERSION, hookimpl
from .evaluation.metrics import MetricResult
from .log import warn
from .model import Model
from .recipe import TrainingRecipe
from .options import GenerationOptions, OptionError, TaskOptions, generation_options, option
from .runtime.atomic import atomic_file
from .runtime.hf import HFModel, tokenizer_settings
from .stages import (ClassificationTask, Entity, Prepared, SpanExtractionTask, TextToTextTask, TokenTaggingTask,
                     entities)
from .task import TaskKind, TrainingContext
from .training import features
from .training.config import TrainConfig
from .runtime.cancel import requested as stop_requested
from .types import (AdapterPreset, BackendSpec, DatasetSpec, GenerationParams, LoadOptions, LoraPreset, MetricSpec,
                    ModelFamily, ModelPreset, Span, TaskFolder, TaskOption)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``nlpapp.Runtime`` is imported on first use: it pulls in plugin discovery and the
    engine, which a plugin module importing ``nlpapp`` for ``hookimpl`` does not need."""
    if name == "Runtime":
        from .api import Runtime

        return Runtime
    raise AttributeError(f"module 'nlpapp' has no attribute {name!r}")

__all__ = [
    # the library: a runtime and its verbs, their configs and results
    "Runtime", "RunFileConfig", "RunFileResult", "TrainConfig", "TrainResult", "EvalConfig", "EvalResult",
    "CompareConfig", "CompareResult", "SystemScores", "Score", "MergeResult", "AdapterInfo", "LoadOptions", "BackendSpec", "stop_requested",
    # errors
    "NlpappError", "InputError", "ModelLoadError", "OptionError", "UnknownNameError", "UnsupportedModelError",
    # writing plugins: hooks, tasks and their options, heads, models, registrations
    "HOOK_API_VERSION", "hookimpl", "TaskKind", "TextToTextTask", "ClassificationTask", "TokenTaggingTask",
    "SpanExtractionTask", "Prepared", "Entity", "entities", "TaskOptions", "GenerationOptions", "generation_options", "option",
    "TaskOption", "TrainingContext", "TrainingRecipe", "features", "IGNORE", "Head", "ModelHead", "ModelFamily", "Model", "HFModel",
    "GenerationParams", "tokenizer_settings", "Span", "ModelPreset", "DatasetSpec", "packaged_jsonl", "MetricSpec",
    "MetricResult", "TaskFolder", "LoraPreset", "AdapterPreset", "cache_dir", "atomic_file", "warn", "__version__",
]
