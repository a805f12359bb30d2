"""nlpapp backend plugin: run GGUF causal language models with llama.cpp.

``--backend llamacpp`` (``LoadOptions.backend``) hands a ``.gguf`` file, or a registered
model whose weights are one (the embedded ``smollm2``), to this plugin as the file itself;
llama.cpp then computes in the file's own tensor types (Q4_1, Q8_0, F16...), with no
conversion to PyTorch. Training still uses the PyTorch weights.

This module is imported by every ``nlpapp`` command (``--help`` included), so it imports
nothing heavy: llama_cpp is imported only when a model is loaded (``loader``)."""

from __future__ import annotations

from typing import Any, Callable

from nlpapp import BackendSpec, LoadOptions, hookimpl

BACKEND = BackendSpec(
    name="llamacpp",
    description="llama.cpp (llama-cpp-python): causal LMs from .gguf files, in the file's own quantised "
                "types; CPU, or a GPU when llama-cpp-python was built with one",
    file_suffixes=(".gguf",),
    install="pip install nlpapp-llamacpp (builds llama.cpp)",
)


@hookimpl
def register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(BACKEND)


@hookimpl
def load_model(path: str, head: str | None, options: LoadOptions) -> Any:
    """A ``LlamaCppModel`` for a ``.gguf`` file when ``--backend llamacpp`` was asked for;
    ``None`` otherwise (PyTorch, or another backend, loads it). Raises ``ModelLoadError`` or
    ``UnsupportedModelError`` (one line) for what this backend cannot do: see ``loader``."""
    if options.backend != BACKEND.name or not path.endswith(BACKEND.file_suffixes):
        return None
    from .loader import load_gguf

    return load_gguf(path, head, options)
