"""Adapters on disk: the standard peft files plus an nlpapp manifest.

``adapter_config.json`` and ``adapter_model.safetensors`` are written by peft, so plain
``PeftModel.from_pretrained`` loads them; ``nlpapp-adapter.json`` adds what nlpapp needs to
use them safely: the task, the base model's identity (a fingerprint of its weights, so a
different base under the same name is caught), the training config, a hash of the data,
the final metrics, library versions and the sha256 of each file a loader reads (``files``),
checked before the adapter is used. A folder without the manifest is not a finished
adapter: the manifest is written last, inside a folder that is renamed into place whole."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .. import config as nlpapp_config
from ..errors import ModelLoadError, NlpappError, UnknownNameError
from . import trust

MANIFEST = "nlpapp-adapter.json"
REQUIRED_KEYS = ("kind", "task", "base_model", "config", "data", "metrics")  # what nlpapp reads back
CONFIG_FILE, WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
WEIGHT_FILES = (CONFIG_FILE, WEIGHTS_FILE)  # peft's files of a LoRA adapter
HEAD_MODULES = ("classifier", "score", "qa_outputs")  # task heads a new adapter brings itself
UNHASHED = frozenset({MANIFEST, "README.md", "train-log.jsonl", "loss-curve.png"})  # no loader reads these
FORMAT_VERSION = 1


# 2: each sample rounded to bfloat16 first, so a base loaded in float32 (training) and in
# bfloat16 (inference's default where the CPU or GPU computes it) has one fingerprint
FINGERPRINT_VERSION = 2


def base_fingerprint(hf_model: Any, new_modules: tuple[str, ...] = (), version: int = FINGERPRINT_VERSION) -> str:
    """Identity of a base model's weights: names, shapes and the first values of each
    backbone tensor. Cheap (no full pass over the weights) and different for any two
    differently trained models. A head's ``new_modules`` (initialised afresh) are left out.
    ``version`` 1 (adapters written before it was 2) took the samples as they were loaded."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(hf_model.state_dict().items()):
        if any(part in HEAD_MODULES or part in new_modules for part in name.split(".")) or "lora_" in name:
            continue
        name = name.replace("base_model.model.", "").replace(".base_layer", "")
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        sample = tensor.detach().flatten()[:64]
        if version >= 2:
            sample = sample.to(torch.bfloat16)
        digest.update(sample.to(torch.float32).cpu().numpy().round(4).tobytes())
    return digest.hexdigest()[:20]


def fingerprint_version(manifest: dict[str, Any]) -> int:
    """The ``base_fingerprint`` version an adapter's manifest recorded (1 when it says none)."""
    return int(manifest["base_model"].get("fingerprint_version", 1))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("nlpapp", "torch", "transformers", "peft"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise NlpappError(f"{folder} is not an nlpapp adapter (no {MANIFEST}); a training run that did "
                          "not finish leaves none")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NlpappError(f"{path} cannot be read ({exc}); retrain the adapter or remove it") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise NlpappError(f"{path} is incomplete (no {', '.join(missing)}); retrain the adapter or remove it")
    absent = [name for name in WEIGHT_FILES if manifest["kind"] == "lora" and not (folder / name).is_file()]
    if absent:
        raise NlpappError(f"{folder} has no {' or '.join(absent)}: the adapter's weights are missing; "
                          "retrain it or copy the whole folder")
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest into ``folder``, with the sha256 of every file already there that a
    loader reads (``file_hashes``): call it last, once the weights are saved."""
    text = json.dumps({"format": FORMAT_VERSION, **manifest, "files": file_hashes(folder)}, indent=2)
    (folder / MANIFEST).write_text(text + "\n")


_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime): sha256, so a big file is hashed once


def _sha256(path: Path) -> str:
    from .gguf import sha256_file

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_file(path)
    return _digests[key]


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of each file in ``folder`` (and its subfolders, links not followed) that a
    loader reads: weights, configs and tokenizer files, not the manifest, logs or plots.
    Keys are paths relative to the folder, with ``/``."""
    found = {}
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(parent) / name
            relative = path.relative_to(folder).as_posix()
            if relative not in UNHASHED and path.is_file() and not path.is_symlink():
                found[relative] = _sha256(path)
    return found


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Check each file the manifest lists against its sha256. An adapter written before
    nlpapp recorded hashes (no ``files``) is not checked. Raises ``ModelLoadError`` naming
    the first file that is missing or does not match."""
    files = manifest.get("files")
    if files is None:
        return
    if not isinstance(files, dict):
        raise ModelLoadError(f"{folder / MANIFEST} has a malformed files table; retrain the adapter")
    for name, digest in sorted(files.items()):
        if not isinstance(digest, str) or os.path.isabs(name) or ".." in Path(name).parts:
            raise ModelLoadError(f"{folder / MANIFEST} lists {name!r}, not a file of the adapter; retrain it")
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"{path} is listed in {MANIFEST} but missing; copy the whole adapter folder again")
        if _sha256(path) != digest:
            raise ModelLoadError(f"{path} does not match the sha256 recorded in {folder / MANIFEST}: it changed "
                                 "after training; retrain the adapter or copy it again")


def check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Everything checked before an adapter folder is used: no link reaching outside it
    (``UnsafeModelError``), each file matching the manifest (``verify_files``), whole
    safetensors files and shard indexes inside the folder (``trust.check_folder``).
    Errors are ``ModelLoadError``s naming the file, in one line."""
    trust.check_links(folder)  # first: hashing follows links
    verify_files(folder, manifest)
    trust.check_folder(folder)


def _lora_config(folder: Path) -> Any:
    """The adapter's ``LoraConfig``, set up for loading saved weights: frozen, and with no
    initialisation that would compute from (or change) the base weights."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelLoadError(f"{folder} has no {CONFIG_FILE}: the adapter's weights are missing; retrain it or "
                             "copy the whole folder")
    data = trust.read_json(path)
    if not isinstance(data, dict) or data.get("peft_type") != "LORA":
        kind = data.get("peft_type") if isinstance(data, dict) else None
        raise ModelLoadError(f"{path} is not a LoRA adapter config (peft_type {kind!r}); retrain the adapter")
    from peft import LoraConfig

    try:
        config = LoraConfig.from_pretrained(str(folder))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path} is not a valid LoRA config ({str(exc).splitlines()[0] if str(exc) else exc!r}); "
                             "retrain the adapter") from None
    config.inference_mode = True
    config.init_lora_weights = False  # the saved weights replace it; PiSSA-style inits rewrite the base
    return config


def _few(keys: list[str], limit: int = 4) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _check_tensors(path: Path, header: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> None:
    found = {name: tuple(info["shape"]) for name, info in header.items() if name != "__metadata__"}
    problems = []
    if missing := sorted(set(expected) - set(found)):
        problems.append(f"missing {_few(missing)}")
    if unexpected := sorted(set(found) - set(expected)):
        problems.append(f"unexpected {_few(unexpected)}")
    if wrong := [f"{k} is {list(found[k])} in the file, {list(expected[k])} in the model"
                 for k in sorted(set(found) & set(expected)) if found[k] != expected[k]]:
        problems.append(f"shape mismatch: {_few(wrong, 2)}")
    if problems:
        raise ModelLoadError(f"{path} does not fit the model with its {CONFIG_FILE} ({'; '.join(problems)}); "
                             "retrain the adapter or copy it again")


def attach(model: Any, folder: Path, name: str = "default") -> Any:
    """``model`` (a transformers model, or a peft model holding other adapters) with the
    LoRA adapter in ``folder`` loaded as ``name``: a peft model. The folder's files are
    checked first (``check_files``, when it has a manifest), then its tensors' names and
    shapes against what its config puts on ``model``, so nothing is loaded half.
    Raises ``ModelLoadError`` naming the file (unreadable config, tensors missing,
    unexpected or of another shape); ``model`` is then left as it was."""
    from peft import PeftModel, get_peft_model
    from peft.utils import get_peft_model_state_dict

    if isinstance(model, PeftModel) and name in model.peft_config:
        return model
    if (folder / MANIFEST).is_file():
        check_files(folder, read_manifest(folder))
    else:
        trust.check_folder(folder)
    config = _lora_config(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise ModelLoadError(f"{folder} has no {WEIGHTS_FILE}: the adapter's weights are missing; retrain it or "
                             "copy the whole folder")
    header = trust.safetensors_header(folder / WEIGHTS_FILE)
    fresh = not isinstance(model, PeftModel)
    try:
        if fresh:
            peft_model = get_peft_model(model, config, adapter_name=name)
        else:
            model.add_adapter(name, config)
            peft_model = model
    except ValueError as exc:  # e.g. its target modules are not in this model
        raise ModelLoadError(f"{folder / CONFIG_FILE} does not fit the model ({str(exc).splitlines()[0]}); "
                             "use the adapter with the base model it was trained on") from None
    try:
        expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(peft_model, adapter_name=name).items()}
        _check_tensors(folder / WEIGHTS_FILE, header, expected)
        peft_model.load_adapter(str(folder), adapter_name=name)
    except BaseException:
        if fresh:
            peft_model.unload()  # takes the injected layers out of the (shared) base model again
        else:
            peft_model.delete_adapter(name)
        raise
    return peft_model


def head_of(manifest: dict[str, Any]) -> str:
    """The head an adapter was trained with (manifests before heads were registered say "family")."""
    head = manifest.get("head") or manifest.get("family")
    if not head:
        raise NlpappError(f"adapter manifest for task {manifest.get('task')!r} names no head; retrain the adapter")
    return head


_warned_options: set[str] = set()  # adapters whose dropped options were reported (once per process)


def with_saved_options(adapter: str, task: Any, given: Any) -> Any:
    """The task options for using ``adapter``: the options it was trained and evaluated with
    (the manifest's ``"options"``) as defaults, under the ``given`` mapping (what it names
    wins, even a value equal to the task's default). A ``TaskOptions`` instance is complete
    and is returned as it is; so is ``given`` for a manifest without options. Saved options
    the task does not take now (unknown, or a value it refuses: an older plugin's) are left
    out, with one warning line per adapter and process. Raises ``NlpappError`` only for an
    adapter that cannot be found or read."""
    from ..options import OptionError, TaskOptions

    if isinstance(given, TaskOptions):
        return given
    folder = resolve(adapter)
    saved = read_manifest(folder).get("options") or {}
    given = {str(k).replace("-", "_"): v for k, v in (given or {}).items()}
    if not isinstance(saved, dict) or not saved:
        return given
    known = {f.name for f in task.Options.fields()}
    kept, dropped = {}, []
    for name, value in saved.items():
        try:
            if name not in known:
                raise OptionError(name, "is unknown")
            task.Options.parse({name: value})
        except OptionError as exc:
            dropped.append(name if name not in known else f"{name} ({exc.problem})")
            continue
        kept[name] = value
    if dropped and str(folder.resolve()) not in _warned_options:
        _warned_options.add(str(folder.resolve()))
        from .. import log

        log.warn(f"adapter {adapter} was trained with option{'s' * (len(dropped) > 1)} that task {task.name!r} "
                 f"does not take now, left out: {', '.join(dropped)}")
    return {**kept, **given}


def check_base(manifest: dict[str, Any], fingerprint: str, base_spec: str) -> None:
    """Raise ``NlpappError`` when ``fingerprint`` (of the manifest's ``fingerprint_version``)
    is not the one the adapter was trained on."""
    expected = manifest["base_model"]["fingerprint"]
    if expected != fingerprint:
        hint = "" if fingerprint_version(manifest) >= 2 else (
            "; an adapter from an earlier nlpapp recorded float32 weights, so if the base is the right one, "
            "load it with --dtype float32")
        raise NlpappError(
            f"adapter was trained on base model {manifest['base_model']['spec']!r} (fingerprint {expected}) "
            f"but {base_spec!r} has fingerprint {fingerprint}: a different model; pass --model "
            f"{manifest['base_model']['spec']}{hint}")


# --- the index of adapters by name ---------------------------------------------------

def _index_path() -> Path:
    return nlpapp_config.home() / "adapters.json"


def _read_index() -> dict[str, str]:
    path = _index_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_index(index: dict[str, str]) -> None:
    from .atomic import atomic_file

    with atomic_file(_index_path()) as handle:
        handle.write(json.dumps(index, indent=2, sort_keys=True) + "\n")


def remember(folder: Path) -> str:
    """Record a finished adapter under its folder name; returns the name. A name another
    folder's adapter already has is not taken over: this one gets ``NAME-2`` (or -3...),
    and the user is told."""
    from .. import log

    index = _read_index()
    path = str(folder.resolve())
    live = known()
    name = folder.name
    if name in live and str(live[name]) != path:
        name = next(f"{folder.name}-{n}" for n in itertools.count(2)
                    if f"{folder.name}-{n}" not in live or str(live[f"{folder.name}-{n}"]) == path)
        if index.get(name) != path:  # new to this name: say so once
            log.warn(f"the adapter name {folder.name!r} is taken by {live[folder.name]}; {folder} is remembered "
                     f"as {name!r} (use --adapter {name}, or the folder path)")
    index = {n: p for n, p in index.items() if p != path}  # one name per folder
    index[name] = path
    _write_index(index)
    return name


def known() -> dict[str, Path]:
    """Adapters by name, those whose folder still holds a manifest."""
    return {n: Path(p) for n, p in sorted(_read_index().items()) if (Path(p) / MANIFEST).is_file()}


def resolve(name_or_path: str) -> Path:
    """A folder path, or the name of a remembered adapter."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        read_manifest(path)
        return path
    adapters = known()
    if name_or_path in adapters:
        return adapters[name_or_path]
    if "/" in name_or_path or name_or_path.startswith("."):
        raise NlpappError(f"adapter folder {name_or_path} does not exist")
    raise UnknownNameError("adapter", name_or_path, adapters)


def remove(name_or_path: str) -> Path:
    folder = resolve(name_or_path)
    shutil.rmtree(folder)
    index = {n: p for n, p in _read_index().items() if Path(p) != folder.resolve()}
    _write_index(index)
    return folder
