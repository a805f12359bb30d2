"""Merging a LoRA adapter into its base: a standalone model folder, checked against the
unmerged model on a probe batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..types import ModelFamily
from . import adapters

PROBE_TEXTS = ["The weather is nice today.", "Oil prices fell as supply grew.",
               "Who founded the company, and when?", "A short text."]


def _probe(model: Any, tokenizer: Any, family: ModelFamily) -> Any:
    """The model's raw outputs (logits) on the probe batch."""
    import torch

    encoded = tokenizer(PROBE_TEXTS, return_tensors="pt", padding=True)
    encoded = {k: v.to(next(model.parameters()).device) for k, v in encoded.items()}
    with torch.inference_mode():
        if family == ModelFamily.SEQ2SEQ_LM:
            out = model(**encoded, decoder_input_ids=encoded["input_ids"][:, :4])
        else:
            out = model(**encoded)
    if family == ModelFamily.EXTRACTIVE_QA:
        return torch.cat([out.start_logits, out.end_logits], dim=-1).float()
    return out.logits.float()


def merge(store: Any, adapter: str, output: Path, overwrite: bool = False) -> dict[str, Any]:
    """Write base + adapter as one model to ``output``; returns the report, with the max
    absolute difference between merged and unmerged outputs on the probe batch."""
    from ..errors import NlpappError
    from ..runtime.atomic import atomic_folder

    folder = adapters.resolve(adapter)
    manifest = adapters.read_manifest(folder)
    if manifest["kind"] != "lora":
        raise NlpappError(f"{folder} is a fully trained model, not an adapter; there is nothing to merge")
    if output.exists() and not overwrite:
        raise NlpappError(f"--output {output} already exists; pass --overwrite to replace it")
    model = store.load(manifest["base_model"]["spec"], adapter=str(folder))
    family = ModelFamily(manifest["family"])
    peft_model, tokenizer = model.hf_model, model.tokenizer
    unmerged = _probe(peft_model, tokenizer, family)
    merged_model = peft_model.merge_and_unload()
    merged = _probe(merged_model, tokenizer, family)
    max_diff = float((merged - unmerged).abs().max())
    with atomic_folder(output, replace=overwrite) as scratch:
        merged_model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
    model.hf_model = merged_model  # the cached base now carries the merged weights; keep them consistent
    return {"adapter": str(folder), "output": str(output), "max_abs_diff": max_diff,
            "probe_texts": len(PROBE_TEXTS)}
