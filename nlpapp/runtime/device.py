"""The one place that decides device and dtype.

``auto`` means: a CUDA GPU when one is visible, else the CPU; bfloat16 where the hardware
computes it natively (a GPU that supports it, a CPU with AVX512-BF16 or AMX), float32
elsewhere. Measured on an AVX512-BF16 CPU (bench/optimization.py, W10): smollm2 decoded
1.98x as many tokens/s in bfloat16 as in float32 with the same headline ROUGE-L and Austen
perplexity within 0.01, and minilm embedded 2.35x as many texts/s at batch 1; a CPU without
those instructions emulates bfloat16, slower than float32."""

from __future__ import annotations

from ..errors import NlpappError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NlpappError(f"--device {requested} was asked for but no CUDA GPU is visible; "
                              "use --device cpu or --device auto")
        return requested
    raise NlpappError(f"unknown device {requested!r}; use one of: auto, cpu, cuda, cuda:N")


def resolve_dtype(requested: str, device: str) -> str:
    """The dtype to load in: ``requested``, or for ``auto`` bfloat16 where ``device`` computes
    it natively and float32 elsewhere (the module docstring gives the measurement)."""
    if requested == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    if requested not in DTYPES:
        raise NlpappError(f"unknown dtype {requested!r}; use one of: {', '.join(DTYPES)}")
    return requested


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU with bf16, or a CPU whose
    oneDNN has bf16 kernels (AVX512-BF16, AMX)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    try:
        return device == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is running out of memory: ``MemoryError``, torch's ``OutOfMemoryError``,
    or the ``RuntimeError`` of an allocator that has none (CPU: "not enough memory"; MPS).
    Does not import torch: only code that already runs torch can raise its errors."""
    import sys

    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)

