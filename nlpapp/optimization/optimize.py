"""``nlpapp optimize``: write a quantized or pruned copy of a model as a folder that
``--model`` (and, for quantization, plain transformers) loads, with a record of what was
done (``nlpapp-optimization.json``) and, unless skipped, its trade-off against the original."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import NlpappError, UnsupportedModelError
from ..runtime.atomic import atomic_file, atomic_folder
from .tradeoff import Tradeoff

RECORD = "nlpapp-optimization.json"


@dataclass
class OptimizeResult:
    """What ``Runtime.quantize`` / ``Runtime.prune`` wrote; ``tradeoff`` is ``None`` when not measured."""

    output: Path
    source: str
    method: str  # e.g. "quantize int8", "prune unstructured 0.5", "prune heads 0.5"
    details: dict[str, Any]
    tradeoff: Tradeoff | None = None


def quantize(runtime: Any, spec: str, method: str, output: Path, *, overwrite: bool = False) -> OptimizeResult:
    """Load ``spec`` with its linear layers quantized by ``method`` (see
    ``nlpapp.optimization.quantize.METHODS``) and save it to ``output``. Raises
    ``NlpappError`` for an output that exists (without ``overwrite``) or is the source,
    and where the method does not run on the runtime's device."""
    from . import quantize as methods

    chosen = methods.method(method)  # an unknown name is refused before any loading
    source = _check_output(runtime, spec, output, overwrite)
    _refuse_quantized(spec, source, "quantize the original model instead")
    model = runtime.models.load_uncached(spec, None, options=_full_precision(runtime, quantization=method))
    module = _module(model)
    details = {"method": method, "library": chosen.library, "description": chosen.description}
    _save(model, module, output, overwrite, {"source": spec, "source_path": source, "optimization": "quantize",
                                             **details})
    return OptimizeResult(output, spec, f"quantize {method}", details)


def prune(runtime: Any, spec: str, sparsity: float, output: Path, *, structured: str | None = None,
          overwrite: bool = False) -> OptimizeResult:
    """Prune ``spec`` (``structured=None``: unstructured magnitude pruning of ``sparsity`` of
    each linear layer's weights; ``"heads"``: that share of every layer's attention heads
    removed) and save it to ``output``. Raises ``NlpappError`` for a sparsity outside (0, 1),
    an unknown ``structured`` value, head pruning of a model that is not a BERT-style encoder,
    or an output that exists (without ``overwrite``) or is the source."""
    from . import prune as pruning

    if not 0 < sparsity < 1:
        raise NlpappError(f"--sparsity must be strictly between 0 and 1 (the share removed), got {sparsity}")
    if structured not in (None, "heads"):
        raise NlpappError(f"--structured {structured!r} is not known; use --structured heads, or leave it out "
                          "for unstructured pruning")
    source = _check_output(runtime, spec, output, overwrite)
    _refuse_quantized(spec, source, "prune the floating-point model (after unstructured pruning, the result "
                                    "can be quantized)")
    model = runtime.models.load_uncached(spec, None, options=_full_precision(runtime))
    module = _module(model)
    if structured == "heads":
        heads = pruning.choose_heads(module, sparsity)
        previous = getattr(module.config, pruning.PRUNED_HEADS_KEY, None) or {}
        if previous:
            raise NlpappError(f"{spec} already has pruned heads; prune the original model instead")
        removed = pruning.remove_heads(module, heads)
        setattr(module.config, pruning.PRUNED_HEADS_KEY, heads)
        details = {"structured": "heads", "sparsity": sparsity, "heads_removed": removed,
                   "heads_per_layer": {k: len(v) for k, v in heads.items()}}
        method = f"prune heads {sparsity}"
    else:
        details = {"structured": None, "sparsity": sparsity, **pruning.prune_unstructured(module, sparsity)}
        method = f"prune unstructured {sparsity}"
    _save(model, module, output, overwrite, {"source": spec, "source_path": source, "optimization": "prune",
                                             **details})
    return OptimizeResult(output, spec, method, details)


def record_tradeoff(output: Path, tradeoff: Tradeoff) -> None:
    """Add the measured trade-off to the output folder's record."""
    path = output / RECORD
    record = json.loads(path.read_text())
    record["tradeoff"] = tradeoff.as_dict()
    with atomic_file(path) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")


def _check_output(runtime: Any, spec: str, output: Path, overwrite: bool) -> str:
    """The source's resolved path. Refuses an output that would replace the source, one that
    exists (without ``overwrite``), and with ``overwrite`` anything but a model folder: a
    folder of other files is never deleted for a model."""
    source = runtime.models.resolve(spec).path
    target = output.resolve()
    if Path(source).exists() and target in (Path(source).resolve(), *Path(source).resolve().parents):
        raise NlpappError(f"--output {output} would replace the model {spec} it is made from; write to another folder")
    if target == Path.cwd() or target in Path.cwd().parents:
        raise NlpappError(f"--output {output} is the current folder or above it; name a new folder")
    if output.exists() and not overwrite:
        raise NlpappError(f"--output {output} already exists; pass --overwrite to replace it")
    if output.exists() and not (output.is_dir() and (output / "config.json").is_file()):
        raise NlpappError(f"--output {output} exists and is not a model folder (no config.json), so --overwrite "
                          "will not delete it; write to a new folder")
    return source


def _refuse_quantized(spec: str, source: str, instead: str) -> None:
    """``NlpappError`` when the folder ``source`` holds quantized weights (its config says so)."""
    from .quantize import quantized_method

    config = Path(source) / "config.json"
    if config.is_file():
        from types import SimpleNamespace

        described = quantized_method(SimpleNamespace(**json.loads(config.read_text())))
        if described:
            raise NlpappError(f"{spec} is already quantized ({described}); {instead}")


def _full_precision(runtime: Any, **changes: Any) -> Any:
    """The runtime's load options, in float32 unless a dtype was asked for: what is saved
    should not be rounded to bfloat16 because this machine computes in it."""
    options = runtime.load_options
    return replace(options, dtype="float32" if options.dtype == "auto" else options.dtype, **changes)


def _module(model: Any) -> Any:
    module = getattr(model, "hf_model", None)
    if module is None:
        raise UnsupportedModelError(f"model {model.name!r} comes from a backend ({type(model).__name__}) that nlpapp "
                                    "cannot optimize; pass a Hugging Face model (a folder, .gguf file or hub id)")
    return module


def _save(model: Any, module: Any, output: Path, overwrite: bool, record: dict[str, Any]) -> None:
    module.config.nlpapp_head = model.head  # found again when the folder loads (``hf.detect_head``)
    with atomic_folder(output, replace=overwrite) as scratch:
        module.save_pretrained(scratch)
        model.tokenizer.save_pretrained(scratch)
        (scratch / RECORD).write_text(json.dumps({**record, "nlpapp_version": __version__}, indent=2) + "\n")
