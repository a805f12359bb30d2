"""The one place that decides device and dtype.

``auto`` means: a CUDA GPU when one is visible, else the CPU; bfloat16 on a GPU that
supports it, float32 everywhere else (on these CPUs float32 is also the faster one)."""

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
    import torch

    if requested == "auto":
        on_gpu = device.startswith("cuda")
        return "bfloat16" if on_gpu and torch.cuda.is_bf16_supported() else "float32"
    if requested not in DTYPES:
        raise NlpappError(f"unknown dtype {requested!r}; use one of: {', '.join(DTYPES)}")
    return requested


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

