"""Model specs -> loaded models, once per process.

A spec is, in this order: a registered model alias, a local folder, a local ``.gguf``
file (converted once to a cached safetensors folder, unless the chosen backend reads the file
itself), or a Hugging Face hub id."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, UnknownNameError
from ..model import Model
from ..registry import Registry
from ..head import ModelHead
from ..types import BackendSpec, LoadOptions, ModelPreset
from . import gguf, trust

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
HUB_PROBE_SECONDS = 2.0  # a reachable hub (or proxy) accepts a connection well within this
_probed: dict[tuple[str, int], bool] = {}  # (host, port) -> reachable, once per process


@dataclass(frozen=True)
class ResolvedSpec:
    spec: str  # what the user typed
    path: str  # a local folder, or a hub id
    kind: str  # alias | folder | gguf | file (a weights file a backend reads itself) | hub
    preset: ModelPreset | None = None


class ModelStore:
    """Resolves specs and caches loaded models, keyed by path, head and labels."""

    def __init__(self, hook: Any, presets: Registry[ModelPreset], options: LoadOptions,
                 heads: "Registry[ModelHead] | None" = None, backends: "Registry[BackendSpec] | None" = None):
        self.hook = hook
        self.presets = presets
        self.options = options
        self.heads = heads if heads is not None else Registry("head", ModelHead)
        self.backends = backends if backends is not None else Registry("backend", BackendSpec)
        self._cache: dict[tuple[str, str | None, tuple[str, ...] | None], Model] = {}
        self._fingerprints: dict[tuple[int, int], str] = {}  # base model fingerprints, computed once

    def backend(self, options: LoadOptions | None = None) -> BackendSpec | None:
        """The plugin backend ``options`` (default: the store's) ask for, or ``None`` for
        PyTorch (``auto``, ``torch``). Raises ``UnknownNameError`` (with a did-you-mean)
        for a name no installed plugin registered."""
        name = (options or self.options).backend
        if name in ("auto", "torch"):
            return None
        return self.backends.get(name)

    def resolve(self, spec: str, options: LoadOptions | None = None) -> ResolvedSpec:
        """Where ``spec``'s weights are for the backend ``options`` ask for (default: the
        store's): a folder or hub id for PyTorch (a GGUF file is converted once), the file
        itself for a backend that reads it (``BackendSpec.file_suffixes``)."""
        backend = self.backend(options)
        reads = backend.file_suffixes if backend is not None else ()
        if spec in self.presets:
            preset = self.presets.get(spec)
            return ResolvedSpec(spec, self._preset_path(preset, reads), "alias", preset)
        path = Path(spec).expanduser()
        if path.is_dir():
            return ResolvedSpec(spec, str(path.resolve()), "folder")
        if path.is_file():
            if path.suffix.lower() in reads:  # MODEL.GGUF is a GGUF file too
                return ResolvedSpec(spec, str(path.resolve()), "file")
            if path.suffix.lower() != ".gguf":
                raise ModelLoadError(f"{spec} is a file; pass a model folder, a .gguf file or a hub id")
            folder = gguf.converted_folder(path.stem, gguf.file_key(path))
            return ResolvedSpec(spec, str(gguf.convert(path, folder)), "gguf")
        if spec.startswith((".", "/", "~")) or spec.lower().endswith(".gguf") or not HUB_ID.match(spec):
            raise ModelLoadError(f"model path {spec} does not exist; check the path, or see "
                                 "nlpapp models for registered names")
        if "/" not in spec and difflib.get_close_matches(spec, self.presets.names(), n=1, cutoff=0.75):
            raise UnknownNameError("model", spec, self.presets.names())
        # before any network: remote code from the hub runs only at a pinned commit
        trust.check_pin(spec, spec, self.options.trust_remote_code, self.options.revision)
        offline = hub_offline_reason()
        if offline is None:
            return ResolvedSpec(spec, spec, "hub")
        cached = _cached_snapshot(spec, self.options.revision)  # offline, a model downloaded before still loads
        if cached is None:
            raise ModelLoadError(f"cannot fetch {spec!r} from the Hugging Face Hub ({offline}) and it is not in "
                                 "the local cache; use a local model folder, a .gguf file or a registered model "
                                 "(nlpapp models)")
        return ResolvedSpec(spec, cached, "hub")

    def _preset_path(self, preset: ModelPreset, reads: tuple[str, ...] = ()) -> str:
        if preset.sha256 and not reads:  # the conversion is keyed by content: skip locating a cached one
            folder = gguf.converted_folder(preset.name, preset.sha256[:16])
            if gguf.is_converted(folder):
                return str(folder)
        location = preset.locate()  # a folder, a .gguf file, a hub id or a plugin's own URL
        if not location.lower().endswith(".gguf"):
            return location
        located = Path(location)
        if preset.sha256:
            actual = gguf.sha256_file(located)
            if actual != preset.sha256:
                raise ModelLoadError(f"{located} has sha256 {actual}, expected {preset.sha256} for model "
                                     f"{preset.name!r}; reinstall the package it comes from")
            if located.suffix.lower() in reads:
                return str(located)
            key = preset.sha256[:16]
        elif located.suffix.lower() in reads:
            return str(located)
        else:
            key = gguf.file_key(located)
        return str(gguf.convert(located, gguf.converted_folder(preset.name, key)))

    def load(self, spec: str, head: str | None = None, adapter: str | None = None,
             labels: tuple[str, ...] | None = None) -> Model:
        """The model for ``spec``, with ``adapter`` (a folder or remembered name) active;
        without one, any adapters loaded earlier on the same base are switched off.
        ``head`` and ``labels`` put a head with those labels on the base (new ones are
        initialised from seed 0, so the same base gives the same untrained head).

        Raises ``ModelLoadError`` (one line, naming the file) for a model or adapter that
        cannot be found or read, a file that does not match the adapter's manifest, or
        adapter weights that do not fit; ``UnsafeModelError`` for a file reaching outside
        its folder, pickle weights or model code the user did not allow (``trust``)."""
        if adapter is None:
            model = self._load_base(spec, head, labels)
            model.activate_adapter(None)
            return model
        from . import adapters

        folder = adapters.resolve(adapter)
        manifest = adapters.read_manifest(folder)
        adapters.check_files(folder, manifest)  # links, hashes, safetensors headers: before any loader reads them
        if manifest["kind"] == "full":  # a fully fine-tuned model is a model folder of its own
            return self._load_base(str(folder), adapters.head_of(manifest), None)
        try:
            model = self._load_base(spec, adapters.head_of(manifest), tuple(manifest.get("labels") or ()) or None)
        except ModelLoadError as exc:
            base = manifest["base_model"]
            raise ModelLoadError(f"adapter {adapter} was trained on {base['spec']!r} ({base['model_type']}) "
                                 f"and cannot be used with {spec!r}: {exc}") from None
        version = adapters.fingerprint_version(manifest)
        key = (id(model), version)
        if key not in self._fingerprints:
            head = adapters.head_of(manifest)
            new_modules = self.heads.get(head).new_modules if head in self.heads else ()
            self._fingerprints[key] = adapters.base_fingerprint(getattr(model, "hf_model", None) or model, new_modules,
                                                                version)
        adapters.check_base(manifest, self._fingerprints[key], spec)
        model.load_adapter(self.adapter_key(folder), str(folder))
        return model

    @staticmethod
    def adapter_key(folder: Path) -> str:
        """The name an adapter from ``folder`` is loaded under (``Model.activate_adapter``):
        peft keys modules by adapter name, which may not hold dots, so its path's hash."""
        return "adapter_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]

    def load_uncached(self, spec: str, head: str | None, labels: tuple[str, ...] | None = None,
                      options: LoadOptions | None = None) -> Model:
        """A copy of the model of its own, through the same ``load_model`` hook, for work that
        changes its weights (training, merging): the cached model others use stays as it was.
        It is always the PyTorch model (training needs its weights), whatever ``--backend`` says."""
        options = replace(options or self.options, backend="auto")
        return self._call_loader(spec, self.resolve(spec, options), head, labels, options)

    def base_head(self, spec: str) -> str | None:
        """The head of ``spec``'s weights without loading them: a registered model's, or
        the one its transformers config declares; ``None`` where neither says."""
        resolved = self.resolve(spec)
        if resolved.preset is not None:
            return resolved.preset.head
        if resolved.kind == "file":  # a backend's own file format: no transformers config to read
            return None
        from .hf import detect_head, read_config

        try:
            if Path(resolved.path).is_dir():
                trust.check_folder(Path(resolved.path))
            with trust.remote_code_policy(self.options.trust_remote_code):
                return detect_head(read_config(resolved.path, self.options), self.heads)
        except ModelLoadError:
            return None

    def _load_base(self, spec: str, head: str | None, labels: tuple[str, ...] | None) -> Model:
        resolved = self.resolve(spec)
        key = (resolved.path, head, labels)
        if key not in self._cache:
            if labels:  # a new head's weights: the same every time, not the global generator's next draw
                import torch

                with torch.random.fork_rng():
                    torch.manual_seed(0)
                    model = self._call_loader(spec, resolved, head, labels, self.options)
            else:
                model = self._call_loader(spec, resolved, head, labels, self.options)
            # found again whether asked for by its head or with the head left to detection
            self._cache[key] = self._cache[(resolved.path, None, labels)] = \
                self._cache[(resolved.path, model.head, labels)] = model
        return self._cache[key]

    def _call_loader(self, spec: str, resolved: ResolvedSpec, head: str | None, labels: tuple[str, ...] | None,
                     options: LoadOptions) -> Model:
        from ..hookcall import first_result

        # the one place every loader goes through: what a folder may reach and what code
        # may run are decided here, for whichever plugin loads the model
        trust.check_pin(spec, resolved.path, options.trust_remote_code, options.revision)
        if Path(resolved.path).is_dir():
            trust.check_folder(Path(resolved.path))
        with trust.remote_code_policy(options.trust_remote_code):
            model = first_result(self.hook.load_model, path=resolved.path, head=head, family=head, options=options,
                                 labels=labels)
        if model is None:
            backend = self.backend(options)
            if backend is not None:
                reads = ", ".join(backend.file_suffixes) or "its own"
                raise ModelLoadError(f"backend {backend.name!r} cannot load model {spec!r} (it reads {reads} files); "
                                     "use --backend torch for this model")
            raise ModelLoadError(f"no plugin could load model {spec!r}")
        if resolved.kind == "alias":
            model.name = spec
        return model

def hub_offline_reason() -> str | None:
    """Why the Hugging Face Hub cannot be reached, or None when it can. Without this, a
    machine with no network spends half a minute in huggingface_hub's retries before failing.
    Honours HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE; otherwise tries one TCP connection to
    the configured endpoint (or the proxy in front of it), at most HUB_PROBE_SECONDS."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE"):
            return f"{var} is set"
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    endpoint = urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    target = endpoint
    proxy = getproxies().get(endpoint.scheme)
    if proxy and not proxy_bypass(host):
        target = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    address = (target.hostname or host, target.port or (443 if target.scheme == "https" else 80))
    if address not in _probed:
        _probed[address] = _connects(address, HUB_PROBE_SECONDS)
    return None if _probed[address] else f"no connection to {address[0]}"


def _connects(address: tuple[str, int], seconds: float) -> bool:
    """One TCP connection, name lookup included, within ``seconds`` (the lookup has no
    timeout of its own, so it runs in a thread that is left behind if it hangs)."""
    import socket
    import threading

    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=seconds).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result) and result[0]


def _cached_snapshot(repo_id: str, revision: str | None = None) -> str | None:
    """The folder of ``repo_id`` (at ``revision``, default main) in the local Hugging Face cache, or None."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # not cached (or a broken cache entry): the caller says what to do instead
        return None
