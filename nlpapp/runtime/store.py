"""Model specs -> loaded models, once per process.

A spec is, in this order: a registered model alias, a local folder, a local ``.gguf``
file (converted once to a cached safetensors folder), or a Hugging Face hub id."""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, UnknownNameError
from ..model import Model
from ..registry import Registry
from ..types import LoadOptions, ModelFamily, ModelPreset
from . import gguf

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ResolvedSpec:
    spec: str  # what the user typed
    path: str  # a local folder, or a hub id
    kind: str  # alias | folder | gguf | hub
    preset: ModelPreset | None = None


class ModelStore:
    """Resolves specs and caches loaded models, keyed by path, family and load options."""

    def __init__(self, hook: Any, presets: Registry[ModelPreset], options: LoadOptions):
        self.hook = hook
        self.presets = presets
        self.options = options
        self._cache: dict[tuple[str, str | None, str], Model] = {}
        self._fingerprints: dict[int, str] = {}  # base model fingerprints, computed once

    def resolve(self, spec: str) -> ResolvedSpec:
        if spec in self.presets:
            preset = self.presets.get(spec)
            return ResolvedSpec(spec, self._preset_path(preset), "alias", preset)
        path = Path(spec).expanduser()
        if path.is_dir():
            return ResolvedSpec(spec, str(path.resolve()), "folder")
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelLoadError(f"{spec} is a file; pass a model folder, a .gguf file or a hub id")
            folder = gguf.converted_folder(path.stem, gguf.file_key(path))
            return ResolvedSpec(spec, str(gguf.convert(path, folder)), "gguf")
        if spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or not HUB_ID.match(spec):
            raise ModelLoadError(f"model path {spec} does not exist; check the path, or see "
                                 "nlpapp models for registered names")
        if "/" not in spec and difflib.get_close_matches(spec, self.presets.names(), n=1, cutoff=0.75):
            raise UnknownNameError("model", spec, self.presets.names())
        return ResolvedSpec(spec, spec, "hub")

    def _preset_path(self, preset: ModelPreset) -> str:
        if preset.sha256:  # the conversion is keyed by content: skip locating a cached one
            folder = gguf.converted_folder(preset.name, preset.sha256[:16])
            if gguf.is_converted(folder):
                return str(folder)
        location = preset.locate()  # a folder, a .gguf file, a hub id or a plugin's own URL
        if not location.endswith(".gguf"):
            return location
        located = Path(location)
        if preset.sha256:
            actual = gguf.sha256_file(located)
            if actual != preset.sha256:
                raise ModelLoadError(f"{located} has sha256 {actual}, expected {preset.sha256} for model "
                                     f"{preset.name!r}; reinstall the package it comes from")
            key = preset.sha256[:16]
        else:
            key = gguf.file_key(located)
        return str(gguf.convert(located, gguf.converted_folder(preset.name, key)))

    def load(self, spec: str, family: ModelFamily | None = None, adapter: str | None = None) -> Model:
        """The model for ``spec``, with ``adapter`` (a folder or remembered name) active;
        without one, any adapters loaded earlier on the same base are switched off."""
        if adapter is None:
            model = self._load_base(spec, family, None)
            model.activate_adapter(None)
            return model
        from ..training import adapters

        folder = adapters.resolve(adapter)
        manifest = adapters.read_manifest(folder)
        if manifest["kind"] == "full":  # a fully fine-tuned model is a model folder of its own
            return self._load_base(str(folder), ModelFamily(manifest["family"]), None)
        labels = manifest.get("labels") or []
        overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                     "label2id": {label: i for i, label in enumerate(labels)}} if labels else None
        try:
            model = self._load_base(spec, ModelFamily(manifest["family"]), overrides)
        except ModelLoadError as exc:
            base = manifest["base_model"]
            raise ModelLoadError(f"adapter {adapter} was trained on {base['spec']!r} ({base['model_type']}) "
                                 f"and cannot be used with {spec!r}: {exc}") from None
        key = id(model)
        if key not in self._fingerprints:
            self._fingerprints[key] = adapters.base_fingerprint(getattr(model, "hf_model", None) or model)
        adapters.check_base(manifest, self._fingerprints[key], spec)
        # peft keys modules by adapter name, which may not hold dots: name it by its path's hash
        name = "adapter_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
        model.load_adapter(name, str(folder))
        return model

    def _load_base(self, spec: str, family: ModelFamily | None, overrides: dict[str, Any] | None) -> Model:
        resolved = self.resolve(spec)
        key = (resolved.path, str(family) if family else None, repr(overrides))
        if key not in self._cache:
            if overrides:  # a new head on a base (a classifier trained from an encoder): HF only
                from .hf import load_hf_model

                model = load_hf_model(resolved.path, str(family), self.options, config_overrides=overrides)
            else:
                from ..hookcall import first_result

                model = first_result(self.hook.load_model, path=resolved.path,
                                     family=str(family) if family else None, options=self.options)
            if model is None:
                raise ModelLoadError(f"no plugin could load model {spec!r}")
            if resolved.kind == "alias":
                model.name = spec
            # found again whether asked for by its family or with the family left to detection
            self._cache[key] = self._cache[(resolved.path, None, repr(overrides))] = \
                self._cache[(resolved.path, str(model.family), repr(overrides))] = model
        return self._cache[key]
