"""Quantization methods: names -> the transformers quantization config that applies them.

nlpapp writes no kernels: torchao (PyTorch's own quantization library) quantizes on the CPU
and GPU, bitsandbytes on a CUDA GPU, both through transformers' ``quantization_config``, so
a quantized folder carries its method in ``config.json`` and ``from_pretrained`` (nlpapp's
``--model`` too) reloads it. Which method runs where was checked with torchao 0.18 and
torch 2.13 on a CPU: int8 and int8-dynamic quantize, save and reload; int4's kernels need CUDA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import NlpappError, UnknownNameError

TORCHAO_INSTALL = "pip install 'nlpapp[optimize]' (torchao)"
BITSANDBYTES_INSTALL = "pip install bitsandbytes (needs a CUDA GPU)"


@dataclass(frozen=True)
class QuantizationMethod:
    """One way to quantize the linear layers of a model (embeddings and norms stay as they are)."""

    name: str
    description: str
    library: str  # the Python module that does the work: torchao | bitsandbytes
    devices: tuple[str, ...]  # "cpu", "cuda": where its kernels run
    make: Callable[[], Any]  # -> a transformers quantization config


def _torchao(config_name: str, **kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import torchao.quantization as ao
        from transformers import TorchAoConfig

        return TorchAoConfig(getattr(ao, config_name)(**kwargs))

    return make


def _bitsandbytes(**kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import torch
        from transformers import BitsAndBytesConfig

        if kwargs.get("load_in_4bit"):
            kwargs.setdefault("bnb_4bit_compute_dtype", torch.bfloat16)
        return BitsAndBytesConfig(**kwargs)

    return make


METHODS: dict[str, QuantizationMethod] = {m.name: m for m in (
    QuantizationMethod("int8", "int8 weights, float activations (weight-only; torchao Int8WeightOnlyConfig)",
                       "torchao", ("cpu", "cuda"), _torchao("Int8WeightOnlyConfig")),
    QuantizationMethod("int8-dynamic", "int8 weights and int8 activations scaled per token at run time "
                       "(torchao Int8DynamicActivationInt8WeightConfig)",
                       "torchao", ("cpu", "cuda"), _torchao("Int8DynamicActivationInt8WeightConfig")),
    QuantizationMethod("int4", "int4 weights in groups of 128, bfloat16 activations (torchao Int4WeightOnlyConfig)",
                       "torchao", ("cuda",), _torchao("Int4WeightOnlyConfig", group_size=128)),
    QuantizationMethod("nf4", "4-bit NormalFloat weights with double quantization, bfloat16 compute "
                       "(bitsandbytes; the QLoRA paper's format, Dettmers et al. 2023)",
                       "bitsandbytes", ("cuda",),
                       _bitsandbytes(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)),
    QuantizationMethod("llm-int8", "8-bit weights with outlier features in float16 (bitsandbytes LLM.int8(), "
                       "Dettmers et al. 2022)", "bitsandbytes", ("cuda",), _bitsandbytes(load_in_8bit=True)),
)}


def method(name: str) -> QuantizationMethod:
    """The method called ``name``; ``UnknownNameError`` (with a did-you-mean) otherwise."""
    if name not in METHODS:
        raise UnknownNameError("quantization method", name, list(METHODS))
    return METHODS[name]


def quantization_config(name: str, device: str) -> Any:
    """The transformers quantization config of method ``name`` for ``device`` (cpu, cuda,
    cuda:N). Raises ``UnknownNameError`` for an unknown method and ``NlpappError`` (one
    line, saying what to use instead) where its kernels do not run on ``device`` or its
    library is not installed."""
    chosen = method(name)
    kind = "cuda" if device.startswith("cuda") else device
    if kind not in chosen.devices:
        here = [m.name for m in METHODS.values() if kind in m.devices]
        raise NlpappError(f"quantization {name} runs only on {' or '.join(chosen.devices)} ({chosen.library}'s "
                          f"kernels), not on {device}; on {device} use {' or '.join(here) or 'no method'}")
    import importlib.util

    if importlib.util.find_spec(chosen.library) is None:
        install = TORCHAO_INSTALL if chosen.library == "torchao" else BITSANDBYTES_INSTALL
        raise NlpappError(f"quantization {name} needs {chosen.library}: {install}")
    return chosen.make()


def quantized_method(config: Any) -> str | None:
    """A short description of how a loaded model's weights are quantized (from its
    ``quantization_config``), or ``None`` for plain floating-point weights."""
    settings = getattr(config, "quantization_config", None)
    if not settings:
        return None
    if not isinstance(settings, dict):
        settings = settings.to_dict()
    detail = settings.get("quant_type") or settings.get("bnb_4bit_quant_type") or ""
    if isinstance(detail, dict):  # torchao: {"default": {"_type": "Int8WeightOnlyConfig", ...}}
        detail = ", ".join(str(v.get("_type", v)) if isinstance(v, dict) else str(v) for v in detail.values())
    return f"{settings.get('quant_method', 'quantized')} {detail}".strip()
