"""A ``.gguf`` file -> a ``LlamaCppModel``: what the request may ask for, where the layers
run, and how big the context is. Every refusal is a one-line nlpapp error, raised before
llama.cpp reads the file where it can be."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from nlpapp import Head, LoadOptions, ModelLoadError, UnsupportedModelError

from .model import LlamaCppModel

# Tokens of context (KV cache) allocated per model, unless NLPAPP_LLAMACPP_CONTEXT says
# otherwise; a model trained on fewer gets its own. A model's full trained context can be
# 128k tokens, gigabytes of cache, so it is not taken by default; 8192 is smollm2's.
DEFAULT_CONTEXT_TOKENS = 8192
CONTEXT_ENV = "NLPAPP_LLAMACPP_CONTEXT"
# default: every CPU this process may use, as PyTorch takes; llama-cpp-python's own default,
# half the logical CPUs, is one thread on a 2-CPU machine (there the plugin decoded smollm2 at
# 0.71x llama.cpp with two threads; with two of its own, 0.85-0.96x)
THREADS_ENV = "NLPAPP_LLAMACPP_THREADS"
REBUILD_WITH_CUDA = ('CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir '
                     'llama-cpp-python')


@dataclass(frozen=True)
class Placement:
    """Where llama.cpp runs the layers: ``device`` as nlpapp reports it, and llama.cpp's
    ``n_gpu_layers`` (-1: all), ``main_gpu`` and ``split_mode`` (0: one GPU, 1: by layer)."""

    device: str
    n_gpu_layers: int = 0
    main_gpu: int = 0
    split_mode: int = 1


def load_gguf(path: str, head: str | None, options: LoadOptions) -> LlamaCppModel:
    """Open ``path`` with llama.cpp. Raises ``UnsupportedModelError`` for a head other than
    causal-lm, ``ModelLoadError`` for ``--dtype`` other than auto, a GPU this build of
    llama-cpp-python cannot use, llama-cpp-python missing, or a file llama.cpp cannot read."""
    check_request(head, options)
    llama_cpp = import_llama_cpp()
    placement = place(options.device, gpu_built=bool(llama_cpp.llama_supports_gpu_offload()))
    context = setting(CONTEXT_ENV, DEFAULT_CONTEXT_TOKENS)
    try:
        llama = llama_cpp.Llama(
            model_path=path, n_ctx=context, n_threads=setting(THREADS_ENV, usable_cpus()),
            n_gpu_layers=placement.n_gpu_layers, main_gpu=placement.main_gpu, split_mode=placement.split_mode,
            # the repetition penalty looks back over the whole context, as transformers' does
            last_n_tokens_size=context, verbose=False)
    except (ValueError, RuntimeError) as exc:  # llama-cpp-python's words for a file it cannot load
        raise ModelLoadError(f"llama.cpp cannot load {path}: {exc}") from exc
    check_generative(llama_cpp, llama, path)
    return LlamaCppModel(path, llama, device=placement.device)


def check_request(head: str | None, options: LoadOptions) -> None:
    """What this backend refuses whatever the file: another head, or a dtype."""
    if head not in (None, Head.CAUSAL_LM):
        raise UnsupportedModelError(f"the llamacpp backend runs causal language models only (head causal-lm), "
                                    f"not {head}; use --backend torch for this task or model")
    if options.dtype != "auto":
        raise ModelLoadError(f"--dtype {options.dtype}: the llamacpp backend computes in the GGUF file's own "
                             "tensor types (e.g. Q4_1, Q8_0, F16); leave --dtype at auto, or use --backend torch")


def check_generative(llama_cpp: Any, llama: Any, path: str) -> None:
    """Refuse a GGUF that is not a decoder-only language model: an encoder-decoder (T5),
    which needs llama.cpp's encode step, or an embedding model (it pools, so it has no
    next-token logits to sample from)."""
    if llama_cpp.llama_model_has_encoder(llama.model):
        kind = "an encoder-decoder model (such as T5)"
    elif llama_cpp.llama_pooling_type(llama.ctx) not in (llama_cpp.LLAMA_POOLING_TYPE_NONE,
                                                         llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED):
        kind = "an embedding model"
    else:
        return
    llama.close()
    raise UnsupportedModelError(f"{path} is {kind}; the llamacpp backend runs decoder-only causal language "
                                "models; use --backend torch")


def place(device: str, *, gpu_built: bool) -> Placement:
    """``--device`` as llama.cpp placement: auto offloads every layer when this build has a
    GPU backend (CUDA, Metal, Vulkan...), cuda or cuda:N needs one, cpu keeps all on the CPU."""
    if device == "cpu" or (device == "auto" and not gpu_built):
        return Placement("cpu")
    if device == "auto":
        return Placement("gpu", n_gpu_layers=-1)
    if device == "cuda" or device.startswith("cuda:"):
        if not gpu_built:
            raise ModelLoadError(f"--device {device}: this llama-cpp-python was built without GPU support; "
                                 f"rebuild it with {REBUILD_WITH_CUDA}, or use --device cpu")
        if device == "cuda":
            return Placement("cuda", n_gpu_layers=-1)
        index = device.partition(":")[2]
        if not index.isdigit():
            raise ModelLoadError(f"--device {device}: expected cuda:N with N a GPU number")
        return Placement(device, n_gpu_layers=-1, main_gpu=int(index), split_mode=0)  # that one GPU only
    raise ModelLoadError(f"--device {device}: the llamacpp backend runs on auto, cpu, cuda or cuda:N")


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(f"the llamacpp backend needs llama-cpp-python ({exc}); "
                             "run: pip install nlpapp-llamacpp (builds llama.cpp)") from exc
    return llama_cpp


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), or all of them where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def setting(name: str, default: int | None) -> int | None:
    """A positive whole number from the environment variable ``name``, else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ModelLoadError(f"{name}={raw!r}: expected a positive whole number")
    return int(raw)
