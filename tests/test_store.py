"""Resolving model specs, the safety policy and the atomic GGUF cache."""

import json

import pytest
import torch

from nlpapp.errors import ModelLoadError, UnsafeModelError
from nlpapp.runtime import gguf
from nlpapp.runtime.atomic import atomic_file, atomic_folder
from nlpapp.runtime.device import resolve_device, resolve_dtype
from nlpapp.types import LoadOptions


def test_alias_folder_and_cache(runtime, tiny_model):
    store = runtime.models
    assert store.resolve("fake-qa").kind == "alias"
    folder = tiny_model("encoder")
    assert store.resolve(str(folder)).kind == "folder"
    first = store.load(str(folder))
    assert store.load(str(folder)) is first  # loaded once per process


def test_path_that_does_not_exist(runtime, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        runtime.models.resolve(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        runtime.models.resolve("./missing.gguf")


def test_hub_id_offline_says_so(runtime, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        runtime.models.load("someorg/somemodel")
    message = str(info.value)
    assert "someorg/somemodel" in message
    assert "Hub" in message or "hub id" in message


def test_pickle_only_weights_are_refused(runtime, tiny_model, tmp_path):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model("encoder"), folder)
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeModelError, match="pickle weights .*--allow-pickle"):
        runtime.models.load(str(folder))


def test_a_non_gguf_file_is_refused(runtime, tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        runtime.models.resolve(str(weights))


def test_broken_gguf_leaves_no_cache_folder(runtime, tmp_path, nlpapp_home):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="cannot read GGUF file"):
        runtime.models.load(str(broken))
    assert list((nlpapp_home / "models").glob("broken-*")) == []


def test_atomic_folder_is_all_or_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as scratch:
            (scratch / "half").write_text("x")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_folder(target) as scratch:
        (scratch / "whole").write_text("x")
    assert (target / "whole").read_text() == "x"


def test_atomic_folder_puts_the_old_folder_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    """Replacing: the old output is moved aside first; if the rename of the new one then
    fails (a full or read-only disk), the old one comes back rather than being deleted."""
    import os

    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("kept")
    real_rename = os.rename

    def rename(source, destination):
        if str(source).endswith(".partial"):
            raise OSError(28, "No space left on device")
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        with atomic_folder(target, replace=True) as scratch:
            (scratch / "new").write_text("x")
    assert (target / "old").read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_file_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("new")
            raise RuntimeError
    assert target.read_text() == "old"


def test_conversion_is_trusted_only_when_marked(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    assert not gguf.is_converted(folder)
    (folder / gguf.MARKER).write_text("{}")
    assert gguf.is_converted(folder)


def test_an_earlier_conversion_loses_its_gguf_quantization_config(tmp_path):
    """Left in, it makes transformers refuse to save a fully fine-tuned copy of the model."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / gguf.MARKER).write_text("{}")
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": {
        "quant_method": "gguf", "gguf_file": "m.gguf"}}))
    assert gguf.is_converted(folder)
    assert json.loads((folder / "config.json").read_text()) == {"model_type": "llama"}


def test_device_and_dtype_policy(monkeypatch):
    assert resolve_device("auto") in ("cpu", "cuda")
    from nlpapp.runtime.device import native_bf16

    # auto: bfloat16 where the CPU computes it natively (AVX512-BF16, AMX), float32 elsewhere
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert native_bf16("cpu") is native
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert resolve_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    assert resolve_dtype("float32", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    from nlpapp.errors import NlpappError

    with pytest.raises(NlpappError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
    with pytest.raises(NlpappError, match="unknown device"):
        resolve_device("tpu")


def test_load_options_reach_the_model(tiny_model):
    from nlpapp.runtime.hf import load_hf_model

    model = load_hf_model(str(tiny_model("encoder")), None, LoadOptions(device="cpu", dtype="bfloat16"))
    assert model.dtype == "bfloat16"
    assert next(model.hf_model.parameters()).dtype == torch.bfloat16
