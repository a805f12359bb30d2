"""The core plugin: the Hugging Face loader, the ``load_model`` default.

Registered ``trylast`` so any other plugin's backend is asked first. Importing this
module is cheap; transformers loads only when a model does."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..model import Model
from ..types import LoadOptions


@hookimpl(trylast=True)
def load_model(path: str, family: str | None, options: LoadOptions) -> Model | None:
    from .hf import load_hf_model

    return load_hf_model(path, family, options)
