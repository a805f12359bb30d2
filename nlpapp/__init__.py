"""nlpapp: a plugin-based NLP application framework.

The public names a plugin needs are importable from here; none imports torch."""

from __future__ import annotations

from .errors import (InputError, ModelLoadError, NlpappError, UnknownNameError,
                     UnsupportedModelError)
from .hookspecs import HOOK_API_VERSION, hookimpl
from .log import warn
from .model import Model
from .task import TaskKind
from .types import (AdapterPreset, DatasetSpec, GenerationParams, LoadOptions, MetricSpec,
                    ModelFamily, ModelPreset, Span, TaskFolder, TaskOption)

__version__ = "0.1.0"

__all__ = [
    "HOOK_API_VERSION", "AdapterPreset", "DatasetSpec", "GenerationParams", "InputError",
    "LoadOptions", "MetricSpec", "Model", "ModelFamily", "ModelLoadError", "ModelPreset",
    "NlpappError", "Span", "TaskFolder", "TaskKind", "TaskOption", "UnknownNameError", "UnsupportedModelError",
    "hookimpl", "warn", "__version__",
]
