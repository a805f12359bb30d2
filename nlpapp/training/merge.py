"""Merging a LoRA adapter into its base: a standalone model folder, checked against the
unmerged model on a probe batch."""

from __future__ import annotations

import dataclasses
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


def merge(store: Any, adapter: str, output: Path, overwrite: bool = False, dequantize: bool = False
          ) -> dict[str, Any]:
    """Write base + adapter as one model to ``output``; returns the report, with the max
    absolute difference between merged and unmerged outputs on the probe batch.

    The base is loaded afresh for the merge, so the runtime's cached model keeps serving
    the base weights afterwards. An adapter trained on a quantized base (QLoRA: the
    manifest's ``quantization``) is refused unless ``dequantize``: then the base is loaded
    unquantized and the adapter merged into those weights. Its fingerprint cannot be
    compared with the quantized weights the adapter was trained on, so only the
    architecture is checked; the probe measures the merge, not the rounding of quantization."""

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
    quantized = (manifest.get("quantization") or {}).get("mode")
    if quantized and not dequantize:
        raise NlpappError(f"{folder} was trained on a {quantized}-quantized base (--quantize {quantized}); merging "
                          "into quantized weights would round the update away: pass --dequantize to merge into the "
                          "base loaded unquantized")
    head = store.heads.get(adapters.head_of(manifest))
    spec = manifest["base_model"]["spec"]
    # in float32, as it was trained: a merge into bfloat16 weights would round the update away
    base = store.load_uncached(spec, head.name, tuple(manifest.get("labels") or ()) or None,
                               dataclasses.replace(store.options, dtype="float32"))
    module, tokenizer = base.trainable_module(), base.tokenizer
    if quantized:  # the recorded fingerprint is of the quantized weights: compare the architecture
        if base.model_type != manifest["base_model"]["model_type"]:
            raise NlpappError(f"adapter was trained on a {manifest['base_model']['model_type']} model, but "
                              f"{spec!r} is {base.model_type}")
    else:
        adapters.check_base(manifest, adapters.base_fingerprint(module, head.new_modules,
                                                           adapters.fingerprint_version(manifest)), spec)
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
