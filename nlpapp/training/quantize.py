"""QLoRA: LoRA on a base whose weights are quantized by bitsandbytes (Dettmers et al. 2023,
"QLoRA: Efficient Finetuning of Quantized LLMs").

``--quantize 4bit`` loads the frozen base as 4-bit NormalFloat (NF4) with double
quantization and bf16 compute, the paper's recipe; ``8bit`` as LLM.int8() (Dettmers et al.
2022). The base loads through the ``load_model`` hook like every model
(``LoadOptions.quantization`` hands transformers the ``BitsAndBytesConfig``); peft's
``prepare_model_for_kbit_training`` then readies it (layer norms in float32, inputs that
carry gradients) and LoRA trains on top, as usual.

bitsandbytes is not a dependency of nlpapp: it is imported only here, when asked for, and
its quantized kernels need a CUDA GPU, so ``check_available`` refuses anything else in one
line before a model loads."""

from __future__ import annotations

from typing import Any

from ..errors import NlpappError

INSTALL = "pip install bitsandbytes"


class QuantizationError(NlpappError):
    """``--quantize`` where it cannot work: no CUDA GPU, or bitsandbytes missing."""


def check_available(mode: str, device: str) -> None:
    """Raise ``QuantizationError`` unless ``device`` is a CUDA GPU and bitsandbytes imports."""
    if not device.startswith("cuda"):
        raise QuantizationError(f"--quantize {mode} needs a CUDA GPU (bitsandbytes); this run is on {device}: "
                                "drop --quantize to train the float32 base, or train on a machine with a CUDA GPU "
                                f"after {INSTALL}")
    try:
        import bitsandbytes  # noqa: F401 - only to see that it is there
    except ImportError:
        raise QuantizationError(f"--quantize {mode} needs bitsandbytes, which is not installed: {INSTALL}") from None


# --quantize -> the loader's quantization method (nlpapp.optimization.quantize.METHODS), whose
# BitsAndBytesConfig is the QLoRA paper's for 4bit: NF4, double quantization, bf16 compute
LOAD_METHODS = {"4bit": "nf4", "8bit": "llm-int8"}


def describe(mode: str) -> dict[str, Any]:
    """What the manifest records of the quantization (``adapters merge`` reads ``mode``)."""
    if mode == "4bit":
        return {"mode": mode, "library": "bitsandbytes", "quant_type": "nf4", "double_quant": True,
                "compute_dtype": "bfloat16"}
    return {"mode": mode, "library": "bitsandbytes", "quant_type": "int8"}


def load_options(options: Any, mode: str, device: str) -> Any:
    """``options`` (``LoadOptions``) for loading the base quantized on ``device``: through the
    same ``load_model`` hook as every model, which hands transformers the BitsAndBytesConfig
    (``LoadOptions.quantization``); the parts left unquantized (embeddings, norms) in bf16."""
    import dataclasses

    return dataclasses.replace(options, device=device, dtype="bfloat16", quantization=LOAD_METHODS[mode])


def prepare(module: Any, gradient_checkpointing: bool) -> Any:
    """peft's ``prepare_model_for_kbit_training``: the quantized base frozen, its layer norms
    in float32, inputs that carry gradients (for checkpointing through frozen layers)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(module, use_gradient_checkpointing=gradient_checkpointing)
