"""The core plugin: the Hugging Face loader, the ``load_model`` default.

Registered ``trylast`` so any other plugin's backend is asked first. Importing this
module is cheap; transformers loads only when a model does."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..model import Model
from ..types import AdapterPreset, LoadOptions

# LoRA target modules per architecture: the attention projections, as the LoRA paper
# and peft's own defaults do.
LORA_PRESETS = (
    AdapterPreset("llama-attention", ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3"),
                  ("q_proj", "k_proj", "v_proj", "o_proj")),
    AdapterPreset("gpt2-attention", ("gpt2",), ("c_attn",)),
    AdapterPreset("bert-attention", ("bert", "roberta", "xlm-roberta", "electra", "mpnet"),
                  ("query", "key", "value")),
    AdapterPreset("distilbert-attention", ("distilbert",), ("q_lin", "v_lin")),
    AdapterPreset("t5-attention", ("t5", "mt5", "umt5"), ("q", "v")),
    AdapterPreset("bart-attention", ("bart", "mbart", "marian", "m2m_100", "nllb-moe", "pegasus"),
                  ("q_proj", "v_proj")),
)


@hookimpl(trylast=True)
def load_model(path: str, family: str | None, options: LoadOptions) -> Model | None:
    from .hf import load_hf_model

    return load_hf_model(path, family, options)


@hookimpl
def register_adapters(register):
    for preset in LORA_PRESETS:
        register(preset)
