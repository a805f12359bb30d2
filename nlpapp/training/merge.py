"""Merging a LoRA adapter into its base: a standalone model folder, checked against the
unmerged model on a probe batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..head import ModelHead
from ..runtime import adapters

PROBE_TEXTS = ["The weather is nice today.", "Oil prices fell as supply grew.",
               "Who founded the company, and when?", "A short text."]


def _probe(model: Any, tokenizer: Any, head: ModelHead) -> Any:
    """The model's raw outputs (logits) on the probe batch."""
    import torch

    encoded = tokenizer(PROBE_TEXTS, return_tensors="pt", padding=True)
    encoded = {k: v.to(next(model.parameters()).device) for k, v in encoded.items()}
    with torch.inference_mode():
        return head.probe(model, encoded)


def merge(store: Any, adapter: str, output: Path, overwrite: bool = False) -> dict[str, Any]:
    """Write base + adapter as one model to ``output``; returns the report, with the max
    absolute difference between merged and unmerged outputs on the probe batch.

    The base is loaded afresh for the merge, so the runtime's cached model keeps serving
    the base weights afterwards."""

    from ..errors import NlpappError
    from ..runtime.atomic import atomic_folder

    folder = adapters.resolve(adapter)
    manifest = adapters.read_manifest(folder)
    if manifest["kind"] != "lora":
        raise NlpappError(f"{folder} is a fully trained model, not an adapter; there is nothing to merge")
    if output.resolve() == folder.resolve() or output.resolve() in folder.resolve().parents:
        raise NlpappError(f"--output {output} would replace the adapter {folder} it merges; write to another folder")
    if output.exists() and not overwrite:
        raise NlpappError(f"--output {output} already exists; pass --overwrite to replace it")
    head = store.heads.get(adapters.head_of(manifest))
    spec = manifest["base_model"]["spec"]
    base = store.load_uncached(spec, head.name, tuple(manifest.get("labels") or ()) or None)
    module, tokenizer = base.trainable_module(), base.tokenizer
    adapters.check_base(manifest, adapters.base_fingerprint(module, head.new_modules), spec)
    peft_model = adapters.attach(module, folder).to(base.device).eval()
    unmerged = _probe(peft_model, tokenizer, head)
    merged_model = peft_model.merge_and_unload()
    merged = _probe(merged_model, tokenizer, head)
    max_diff = float((merged - unmerged).abs().max())
    # the head travels with the model: a plugin's head (detected by a shared architecture
    # name otherwise) is found again when the merged folder is loaded (``hf.detect_head``)
    merged_model.config.nlpapp_head = head.name
    with atomic_folder(output, replace=overwrite) as scratch:
        merged_model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
    return {"adapter": str(folder), "output": str(output), "max_abs_diff": max_diff,
            "probe_texts": len(PROBE_TEXTS)}
