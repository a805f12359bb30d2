"""nlpapp: a plugin-based NLP application framework.

The public names a plugin needs are importable from here; none imports torch."""

from __future__ import annotations

from .datasets import packaged_jsonl
from .errors import (InputError, ModelLoadError, NlpappError, UnknownNameError,
                     UnsupportedModelError)
from .head import IGNORE, Head, ModelHead
from .hookspecs import HOOK_API_VERSION, hookimpl
from .evaluation.metrics import MetricResult
from .log import warn
from .model import Model
from .runtime.hf import HFModel
from .task import TaskKind, TrainingContext
from .types import (AdapterPreset, DatasetSpec, GenerationParams, LoadOptions, MetricSpec,
                    ModelFamily, ModelPreset, Span, TaskFolder, TaskOption)

__version__ = "0.1.0"

__all__ = [
    "HOOK_API_VERSION", "IGNORE", "AdapterPreset", "DatasetSpec", "GenerationParams", "HFModel", "Head",
    "InputError", "LoadOptions", "MetricResult", "MetricSpec", "Model", "ModelFamily", "ModelHead", "ModelLoadError",
    "ModelPreset", "NlpappError", "Span", "TaskFolder", "TaskKind", "TaskOption", "TrainingContext",
    "UnknownNameError", "UnsupportedModelError", "hookimpl", "packaged_jsonl", "warn", "__version__",
]
