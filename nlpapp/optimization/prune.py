"""Pruning: zeroing the smallest weights (unstructured), or removing whole attention heads
from an encoder (structured: the layers shrink, so the model is smaller and faster).

Unstructured pruning is ``torch.nn.utils.prune.l1_unstructured`` on every linear layer of
the transformer blocks, the same share in each (magnitude pruning, Han et al. 2015,
"Learning both Weights and Connections"); embeddings and the output head are left whole.
The zeros are stored as zeros: the folder is as large as before and dense kernels run no
faster, which the trade-off report shows.

Head pruning removes, in every layer, the heads whose query, key, value and output weights
have the smallest L2 norm (a data-free stand-in for the importance score of Michel et al.
2019, "Are Sixteen Heads Really Better than One?"). transformers 5 no longer re-prunes a model
from its config, so nlpapp records the removed heads in ``config.json``
(``nlpapp_pruned_heads``) and rebuilds those shapes when it loads the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, NlpappError

PRUNED_HEADS_KEY = "nlpapp_pruned_heads"


def prune_unstructured(module: Any, sparsity: float) -> dict[str, Any]:
    """Zero the ``sparsity`` share (0 < s < 1) of smallest-magnitude weights in every linear
    layer of the transformer blocks, in place. Returns ``{"layers": n, "zeroed": n,
    "weights": n}`` (counts of linear layers and of their weights)."""
    import torch
    from torch.nn.utils import prune

    layers = [(name, child) for name, child in module.named_modules()
              if isinstance(child, torch.nn.Linear) and _in_blocks(name)]
    if not layers:
        raise NlpappError(f"{type(module).__name__} has no linear layers inside its transformer blocks to prune")
    zeroed = total = 0
    for _, layer in layers:
        prune.l1_unstructured(layer, name="weight", amount=sparsity)
        prune.remove(layer, "weight")  # makes the zeros permanent: a plain weight tensor again
        zeroed += int((layer.weight == 0).sum())
        total += layer.weight.numel()
    return {"layers": len(layers), "zeroed": zeroed, "weights": total}


def _in_blocks(name: str) -> bool:
    """Whether a module name lies inside the repeated transformer blocks (not an embedding,
    pooler or output head), by the names transformers gives them."""
    parts = name.split(".")
    return any(p in ("layer", "layers", "h", "block", "blocks") for p in parts) and "embed" not in name


def attention_modules(module: Any) -> list[tuple[int, Any, Any]]:
    """``(layer index, self-attention, output projection)`` of each BERT-style layer: an
    attention with ``query``/``key``/``value`` linears and ``attention_head_size``, whose
    parent's ``output.dense`` mixes the heads back (bert, roberta, xlm-roberta, electra, ...).
    Empty for other architectures."""
    found = []
    for name, child in module.named_modules():
        inner = getattr(child, "self", None)
        dense = getattr(getattr(child, "output", None), "dense", None)
        if inner is not None and dense is not None and all(hasattr(inner, a) for a in
                                                              ("query", "key", "value", "attention_head_size")):
            found.append((len(found), inner, dense))
    return found


def head_scores(attention: Any, dense: Any) -> list[float]:
    """One L2 norm per head of its query, key and value rows and its output-projection columns."""
    import torch

    size = attention.attention_head_size
    heads = attention.query.out_features // size
    scores = []
    with torch.no_grad():
        for head in range(heads):
            rows = slice(head * size, (head + 1) * size)
            parts = [attention.query.weight[rows], attention.key.weight[rows], attention.value.weight[rows],
                     dense.weight[:, rows].T]
            scores.append(float(torch.cat(parts).norm()))
    return scores


def choose_heads(module: Any, sparsity: float) -> dict[str, list[int]]:
    """The heads to remove: in each layer, the ``round(sparsity x heads)`` with the smallest
    ``head_scores`` (at least one head is kept per layer). Raises ``NlpappError`` for a
    model without BERT-style attention, or a sparsity that removes no head."""
    layers = attention_modules(module)
    if not layers:
        raise NlpappError(f"--structured heads works on BERT-style encoders (bert, roberta, xlm-roberta, electra); "
                          f"{type(module).__name__} is not one; use unstructured pruning (leave out --structured)")
    chosen = {}
    for index, attention, dense in layers:
        scores = head_scores(attention, dense)
        count = min(round(sparsity * len(scores)), len(scores) - 1)
        if count == 0:
            raise NlpappError(f"--sparsity {sparsity} removes no head of the {len(scores)} in a layer (it rounds to "
                              f"0); remove at least one with --sparsity {1 / len(scores):.3f} or more")
        chosen[str(index)] = sorted(sorted(range(len(scores)), key=scores.__getitem__)[:count])
    return chosen


def remove_heads(module: Any, pruned: dict[str, list[int]]) -> int:
    """Remove the listed heads (``{layer index: [head, ...]}``) in place by shrinking the
    query, key and value linears (output rows) and the output projection (input columns).
    Returns the number of heads removed."""
    layers = attention_modules(module)
    removed = 0
    for index, attention, dense in layers:
        drop = set(pruned.get(str(index), ()))
        if not drop:
            continue
        size = attention.attention_head_size
        heads = attention.query.out_features // size
        keep = [i for h in range(heads) if h not in drop for i in range(h * size, (h + 1) * size)]
        for name in ("query", "key", "value"):
            setattr(attention, name, _keep_rows(getattr(attention, name), keep))
        _keep_columns(dense, keep)
        attention.num_attention_heads = heads - len(drop)
        attention.all_head_size = len(keep)
        removed += len(drop)
    return removed


def _keep_rows(linear: Any, rows: list[int]) -> Any:
    import torch

    index = torch.tensor(rows, device=linear.weight.device)
    smaller = torch.nn.Linear(linear.in_features, len(rows), bias=linear.bias is not None,
                              device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        smaller.weight.copy_(linear.weight.index_select(0, index))
        if linear.bias is not None:
            smaller.bias.copy_(linear.bias.index_select(0, index))
    return smaller


def _keep_columns(linear: Any, columns: list[int]) -> None:
    import torch

    index = torch.tensor(columns, device=linear.weight.device)
    with torch.no_grad():
        linear.weight = torch.nn.Parameter(linear.weight.index_select(1, index).clone())
    linear.in_features = len(columns)


def load_head_pruned(auto_class: Any, path: str, config: Any, dtype: Any) -> Any:
    """Build ``auto_class`` from ``config``, remove the heads its ``nlpapp_pruned_heads``
    lists, and load the folder's safetensors weights into those shapes. Raises
    ``ModelLoadError`` when the folder has no safetensors weights or they do not fit."""
    from safetensors.torch import load_file

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path} lists pruned heads but has no *.safetensors weights")
    model = auto_class.from_config(config, dtype=dtype)
    remove_heads(model, getattr(config, PRUNED_HEADS_KEY))
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(str(file)))
    state = _with_base_prefix(state, model)
    try:
        missing, _unused = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise ModelLoadError(f"the weights in {path} do not fit its pruned shapes: "
                             f"{str(exc).strip().splitlines()[-1].strip()}") from None
    # a head the checkpoint has not got (a classifier put on an encoder) starts new, as with
    # from_pretrained, and weights it has but the head does not use are left out; a missing
    # weight of the pruned body is an error
    prefix = getattr(model, "base_model_prefix", "")
    body = [k for k in missing if (not prefix or k.startswith(prefix + ".")) and not _tied_or_buffer(model, k)]
    if body:
        raise ModelLoadError(f"the weights in {path} do not fit its pruned shapes (missing: {body[:3]})")
    model.tie_weights()
    return model


def _with_base_prefix(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """``state``'s keys as ``model`` names them: a bare encoder's weights loaded under a head
    get the base model's prefix (``bert.``), a headed model's loaded bare lose it, as
    ``from_pretrained`` does."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix:
        return state
    mark = prefix + "."
    saved_has = any(k.startswith(mark) for k in state)
    wanted_has = any(k.startswith(mark) for k in model.state_dict())
    if wanted_has and not saved_has:
        return {mark + k: v for k, v in state.items()}
    if saved_has and not wanted_has:
        return {k[len(mark):]: v for k, v in state.items() if k.startswith(mark)}
    return state


def _tied_or_buffer(model: Any, key: str) -> bool:
    """Whether a key missing from a saved state dict is one save_pretrained leaves out: a
    buffer (position ids) or a weight tied to another (an output head tied to embeddings)."""
    buffers = dict(model.named_buffers())
    tied = getattr(model, "_tied_weights_keys", None) or {}
    return key in buffers or key in tied
