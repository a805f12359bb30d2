"""GGUF files converted once to a safetensors folder in the user cache.

Loading a GGUF with transformers dequantises every tensor (about 30 s for SmolLM2-135M on
2 cores); the converted folder reloads in a few seconds. The conversion is written with
``atomic_folder``, so an interrupted one leaves nothing that is later trusted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import config, log
from ..errors import ModelLoadError
from .atomic import atomic_folder

MARKER = "nlpapp-conversion.json"


def file_key(path: Path) -> str:
    """A cheap identity for a file: path, size and modification time."""
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_folder(name: str, key: str) -> Path:
    return config.models_dir() / f"{name}-{key}"


def is_converted(folder: Path) -> bool:
    if not (folder / MARKER).is_file():
        return False
    _drop_quantization_config(folder)
    return True


def _drop_quantization_config(folder: Path) -> None:
    """Earlier conversions kept the GGUF ``quantization_config`` in config.json,
    which makes transformers treat the (dequantised) model as quantised: it then refuses to
    save a fully fine-tuned copy. Remove it where it is still there."""
    from .atomic import atomic_file

    path = folder / "config.json"
    settings = json.loads(path.read_text()) if path.is_file() else {}
    if "quantization_config" in settings:
        settings.pop("quantization_config")
        with atomic_file(path) as handle:
            handle.write(json.dumps(settings, indent=2) + "\n")


def convert(gguf_path: Path, target: Path) -> Path:
    """Dequantise ``gguf_path`` into a float32 safetensors folder at ``target``; only the file
    itself is read, never its neighbours, and no code runs. Raises ``ModelLoadError`` when
    it cannot be read."""
    if is_converted(target):
        return target
    if not gguf_path.is_file():
        raise ModelLoadError(f"GGUF file {gguf_path} does not exist")
    log.info(f"converting {gguf_path.name} to safetensors once (cached in {target.parent}); "
             "this takes a minute")
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from . import trust

    filename = gguf_path.name
    with tempfile.TemporaryDirectory(prefix="nlpapp-gguf-") as alone, trust.remote_code_policy(False):
        # transformers also reads a tokenizer_config.json, generation_config.json or auto_map code
        # that happens to lie beside the file; linked into a folder of its own, only the GGUF is read
        folder = alone
        try:
            (Path(alone) / filename).symlink_to(gguf_path.resolve())
        except OSError:  # no symbolic links here (Windows without the right): read it where it is
            folder = str(gguf_path.parent)
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"cannot read GGUF file {gguf_path}: {exc}") from exc
    # A model loaded from GGUF refuses save_pretrained; build a plain one from its config.
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)  # the weights below are dequantised floats
    model_config = AutoConfig.for_model(**settings)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.tie_weights()
    if loaded.generation_config is not None:
        plain.generation_config = loaded.generation_config
    with atomic_folder(target) as scratch:
        plain.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        (scratch / MARKER).write_text(json.dumps(
            {"source": str(gguf_path), "size": gguf_path.stat().st_size}, indent=2))
    return target
