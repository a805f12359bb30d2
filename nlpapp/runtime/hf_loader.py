"""The core plugin: the built-in heads, the LoRA presets, the core metrics and the Hugging
Face loader, the ``load_model`` default.

The loader is registered ``trylast`` so any other plugin's backend is asked first.
Importing this module is cheap; transformers loads only when a model does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from ..model import Model
from ..types import BackendSpec, LoadOptions, LoraPreset

if TYPE_CHECKING:
    from ..registry import Registries

# LoRA target modules per architecture: the attention projections, as the LoRA paper
# and peft's own defaults do.
LORA_PRESETS = (
    LoraPreset("llama-attention", ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"),
               ("q_proj", "k_proj", "v_proj", "o_proj")),
    LoraPreset("gpt2-attention", ("gpt2",), ("c_attn",)),
    LoraPreset("bert-attention", ("bert", "roberta", "xlm-roberta", "electra", "mpnet"),
               ("query", "key", "value")),
    LoraPreset("distilbert-attention", ("distilbert",), ("q_lin", "v_lin")),
    LoraPreset("t5-attention", ("t5", "mt5", "umt5"), ("q", "v")),
    LoraPreset("bart-attention", ("bart", "mbart", "marian", "m2m_100", "nllb-moe", "pegasus"),
               ("q_proj", "v_proj")),
)


TORCH_BACKEND = BackendSpec("torch", "PyTorch through transformers: every head, LoRA adapters, training; "
                                     "the default (--backend auto)")


class CorePlugin:
    """Registered under the name ``nlpapp.core``; it is given the registries being filled,
    so the loader can look up the heads any plugin registered."""

    def __init__(self, registries: "Registries"):
        self.registries = registries

    @hookimpl(trylast=True)
    def load_model(self, path: str, head: str | None, options: LoadOptions,
                   labels: tuple[str, ...] | None) -> Model | None:
        if options.backend not in ("auto", TORCH_BACKEND.name):
            return None  # another plugin's backend was asked for
        from .hf import load_hf_model

        return load_hf_model(path, head, options, labels, heads=self.registries.heads)

    @hookimpl
    def register_heads(self, register: Any) -> None:
        from .heads import BUILTIN_HEADS

        for head in BUILTIN_HEADS:
            register(head)

    @hookimpl
    def register_backends(self, register: Any) -> None:
        register(TORCH_BACKEND)

    @hookimpl
    def register_lora_presets(self, register: Any) -> None:
        for preset in LORA_PRESETS:
            register(preset)

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        from ..evaluation.metrics import core_metrics

        for metric in core_metrics():
            register(metric)
