"""What nlpapp trusts in files it did not write, decided here and nowhere else.

- A model or adapter folder's files stay inside the folder: no link, shard index entry or
  tokenizer file name may reach outside it, except links into the Hugging Face cache
  (``check_folder``).
- A safetensors file is whole: its header is read and checked against its size, so a
  truncated download is named instead of failing deep inside a loader.
- Python code shipped with a model runs only when the user said so
  (``LoadOptions.trust_remote_code``), whichever plugin's loader asks transformers for it
  (``remote_code_policy``), and code from the Hugging Face Hub only at a pinned commit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import ModelLoadError, UnsafeModelError

COMMIT = re.compile(r"[0-9a-f]{40}")
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on a header


def is_commit(revision: str | None) -> bool:
    """Whether ``revision`` is a full git commit hash (what pins a hub repository's contents)."""
    return bool(revision and COMMIT.fullmatch(revision))


def check_pin(spec: str, path: str, trust_remote_code: bool, revision: str | None) -> None:
    """Refuse running a hub repository's code at a moving revision. Raises ``UnsafeModelError``
    when ``trust_remote_code`` is set, ``path`` is a hub id (not a local folder) and
    ``revision`` is not a commit hash: a branch can change after the user reviewed it."""
    if not trust_remote_code or Path(path).is_dir() or is_commit(revision):
        return
    given = f" ({revision!r} is a branch or tag, which can change)" if revision else ""
    raise UnsafeModelError(f"--trust-remote-code runs the code of hub model {spec!r}: pin the version you "
                           f"reviewed with --revision COMMIT, its 40-character commit hash{given}")


# --- files that reach outside their folder -------------------------------------------

def containment_root(folder: Path) -> Path:
    """The folder a model's files must resolve into: the folder itself, or for a snapshot in
    the Hugging Face cache (``models--ORG--NAME/snapshots/REV``) the repository's cache
    folder, whose snapshot files are links to its ``blobs``."""
    folder = folder.resolve()
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent
    return folder


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _reachable(target: Path, root: Path) -> bool:
    """Whether a link may resolve to ``target``: inside the model's folder, or into the
    Hugging Face cache (``hf download --local-dir`` once linked files there)."""
    if _inside(target, root):
        return True
    from huggingface_hub import constants

    return _inside(target, Path(constants.HF_HUB_CACHE).expanduser().resolve())


def _entries(folder: Path) -> Iterator[Path]:
    """The folder's entries and those of its direct subfolders (where transformers reads:
    top-level files, ``additional_chat_templates/``), without following links."""
    try:
        top = list(os.scandir(folder))
    except OSError as exc:
        raise ModelLoadError(f"{folder} cannot be read ({exc.strerror or exc})") from None
    for entry in top:
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            try:
                yield from (Path(e.path) for e in list(os.scandir(entry.path)))
            except OSError:  # a subfolder nobody can list is one no loader reads either
                continue


def check_links(folder: Path) -> None:
    """Refuse a folder holding a link that resolves outside it, or something other than
    files and folders (a pipe or device would block or never end when read). Raises
    ``UnsafeModelError`` naming the entry."""
    root = containment_root(folder)
    for path in _entries(folder):
        if path.is_symlink():
            target = path.resolve()
            if not _reachable(target, root):
                raise UnsafeModelError(f"{path} is a link to {target}, outside {folder}; a model's files must be "
                                       "inside its folder: copy the file there if you trust it")
            mode = os.stat(path).st_mode if target.exists() else stat.S_IFREG
        else:
            mode = os.lstat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeModelError(f"{path} is not a regular file (a pipe, socket or device); remove it from {folder}")


def _escapes(entry: str, folder: Path, root: Path) -> bool:
    """Whether a file name from a folder's own JSON leads outside it (absolute, ``..``, a link)."""
    if not entry or os.path.isabs(entry) or "\\" in entry or ".." in Path(entry).parts:
        return True
    return not _reachable((folder / entry).resolve(), root)


def read_json(path: Path) -> Any:
    """A JSON file of a model or adapter folder; ``ModelLoadError`` naming it when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path} cannot be read ({reason}); download or copy it again") from None


def check_index(index: Path, folder: Path, root: Path | None = None) -> None:
    """Refuse a shard index (``*.index.json``) whose ``weight_map`` names a file outside
    ``folder``; transformers joins the entry to the folder, so ``../x`` or ``/x`` would be
    read from anywhere. Raises ``UnsafeModelError`` naming the index and the entry, or
    ``ModelLoadError`` when the index is not valid JSON with a ``weight_map``."""
    root = root or containment_root(folder)
    data = read_json(index)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict):
        raise ModelLoadError(f"{index} has no weight_map; download or copy the model again")
    for key, entry in weight_map.items():
        if not isinstance(entry, str) or _escapes(entry, folder, root):
            raise UnsafeModelError(f"{index}: weight_map entry {key!r} points outside the model folder "
                                   f"({entry!r}); refusing to load {folder}")


def check_tokenizer_config(folder: Path, root: Path | None = None) -> None:
    """Refuse ``fast_tokenizer_files`` in ``tokenizer_config.json`` naming a file outside the
    folder: transformers picks one by version and joins it to the folder as it is. Raises
    ``UnsafeModelError`` naming the file and the entry."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return
    data = read_json(path)
    entries = data.get("fast_tokenizer_files") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else ([] if entries is None else [entries]):
        if not isinstance(entry, str) or _escapes(entry, folder, root or containment_root(folder)):
            raise UnsafeModelError(f"{path}: fast_tokenizer_files entry {entry!r} points outside the model folder; "
                                   f"refusing to load {folder}")


def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), checked
    against the file's size without reading the tensors. Raises ``ModelLoadError`` naming
    the file when it is truncated, has bytes after its last tensor, or is not safetensors."""
    def corrupt(why: str) -> ModelLoadError:
        return ModelLoadError(f"{path} is truncated or corrupt ({why}); download or copy it again")

    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise corrupt(f"{size} bytes, too short for a safetensors header")
            length = int.from_bytes(prefix, "little")
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise corrupt(f"its header claims {length} bytes, the file has {size}")
            header = json.loads(handle.read(length))
    except ValueError:
        raise corrupt("its header is not valid JSON") from None
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if not isinstance(header, dict):
        raise corrupt("its header is not a table of tensors")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] and isinstance(info.get("shape"), list)):
            raise corrupt(f"tensor {name!r} has no valid shape and offsets")
        end = max(end, offsets[1])
    data = size - 8 - length
    if data < end:
        raise corrupt(f"its tensors need {end} bytes of data, the file has {data}")
    if data > end:
        raise corrupt(f"{data - end} bytes after its last tensor")
    return header


def check_folder(folder: Path) -> None:
    """Everything nlpapp checks in a local model or adapter folder before any loader reads
    it: links (``check_links``), shard indexes (``check_index``), tokenizer file names
    (``check_tokenizer_config``) and each top-level safetensors file's header and size
    (``safetensors_header``). Raises ``UnsafeModelError`` for a file reaching outside the
    folder, ``ModelLoadError`` for a broken file; each names the file, in one line."""
    check_links(folder)
    root = containment_root(folder)
    for index in sorted(folder.glob("*.index.json")):
        check_index(index, folder, root)
    check_tokenizer_config(folder, root)
    for weights in sorted(folder.glob("*.safetensors")):
        safetensors_header(weights)


# --- code shipped with a model ----------------------------------------------------------

_allowed: list[bool] = []  # one entry per model load in progress; the innermost decides
_GUARDED = "transformers.dynamic_module_utils"


@contextlib.contextmanager
def remote_code_policy(allowed: bool) -> Iterator[None]:
    """While this is active, transformers runs a model's own Python code (``auto_map``
    modules, custom ``generate``) only if ``allowed``, whatever ``trust_remote_code`` the
    caller passed, and code from a hub repository only at a pinned commit; otherwise its
    code loader raises ``UnsafeModelError`` before the file is copied or imported. The
    store wraps every ``load_model`` hook call in it, so no plugin's loader can opt in
    for the user. Outside it, transformers behaves as it does without nlpapp."""
    _install()
    _allowed.append(allowed)
    try:
        yield
    finally:
        _allowed.pop()


def _refuse_or_pass(repo: Any, module: Any, revision: str | None) -> None:
    if not _allowed:
        return
    if not _allowed[-1]:
        raise UnsafeModelError(f"{repo} ships Python code ({module}) that loading it would run; refused: "
                               "pass --trust-remote-code only if you trust the model's author")
    if not os.path.isdir(str(repo)) and not is_commit(revision):
        raise UnsafeModelError(f"hub repository {repo} would run its code ({module}) at revision "
                               f"{revision or 'main'!r}, which can change; code from the hub runs only at the "
                               "commit given with --revision COMMIT")


def _guard_cached_module_file(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_cached_module_file(pretrained_model_name_or_path: Any, module_file: str, *args: Any,
                               **kwargs: Any) -> Any:
        revision = kwargs.get("revision", args[4] if len(args) > 4 else None)
        _refuse_or_pass(pretrained_model_name_or_path, module_file, revision)
        return original(pretrained_model_name_or_path, module_file, *args, **kwargs)

    get_cached_module_file.__wrapped__ = original  # type: ignore[attr-defined]
    return get_cached_module_file


def _guard_class_in_module(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_class_in_module(class_name: str, module_path: Any, *args: Any, **kwargs: Any) -> Any:
        # the module was fetched already (by a caller that skipped the step above): a local import
        if _allowed and not _allowed[-1]:
            _refuse_or_pass(module_path, class_name, None)
        return original(class_name, module_path, *args, **kwargs)

    get_class_in_module.__wrapped__ = original  # type: ignore[attr-defined]
    return get_class_in_module


def _guard_resolve(original: Callable[..., Any]) -> Callable[..., Any]:
    def resolve_trust_remote_code(trust_remote_code: Any, *args: Any, **kwargs: Any) -> Any:
        # a loader that passed nothing would get transformers' interactive prompt: answer it
        if _allowed and trust_remote_code is None:
            trust_remote_code = _allowed[-1]
        return original(trust_remote_code, *args, **kwargs)

    resolve_trust_remote_code.__wrapped__ = original  # type: ignore[attr-defined]
    return resolve_trust_remote_code


_GUARDS = {"get_cached_module_file": _guard_cached_module_file, "get_class_in_module": _guard_class_in_module,
           "resolve_trust_remote_code": _guard_resolve}


def _patch(module: Any) -> None:
    """Wrap the code loader's functions in ``module`` (transformers.dynamic_module_utils)
    and in every transformers module that imported them by name already."""
    if getattr(module, "_nlpapp_guarded", False):
        return
    replaced = {}
    for name, guard in _GUARDS.items():
        original = getattr(module, name, None)
        if original is not None:
            replaced[id(original)] = guard(original)
            setattr(module, name, replaced[id(original)])
    for mod_name, other in list(sys.modules.items()):
        if other is None or other is module or not mod_name.startswith("transformers"):
            continue
        for attr, value in list(vars(other).items()):
            if id(value) in replaced and callable(value):
                setattr(other, attr, replaced[id(value)])
    module._nlpapp_guarded = True


class _PatchOnImport:
    """A meta path finder that guards ``transformers.dynamic_module_utils`` as it is
    imported, so guarding costs nothing for loaders that never import transformers, and
    every module importing it afterwards binds the guarded functions."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _GUARDED:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        inner = spec.loader

        class Loader:
            def create_module(self, spec: Any) -> Any:
                return inner.create_module(spec)

            def exec_module(self, module: Any) -> None:
                inner.exec_module(module)
                _patch(module)
                if _finder in sys.meta_path:  # its work is done
                    sys.meta_path.remove(_finder)

            def __getattr__(self, name: str) -> Any:  # get_source and the like, for tracebacks
                return getattr(inner, name)

        spec.loader = Loader()
        return spec


_finder = _PatchOnImport()


def _install() -> None:
    if _GUARDED in sys.modules:
        _patch(sys.modules[_GUARDED])
    elif _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
