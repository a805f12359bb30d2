"""A new classifier head that starts from what the encoder already knows, and class weights.

``initialise_classifier`` sets a head's new output layer by weight imprinting (Qi, Brown
and Lowe 2018, "Low-Shot Learning with Imprinted Weights", CVPR): each label's row of the
weight is ``temperature / r * normalize(mean_i normalize(x_i))`` over the inputs ``x_i``
that layer reads for that label's texts (``r``: the mean ``|x_i|`` over all labels), the
bias is zero. With equal-norm rows and no bias, the layer's argmax is the label
whose prototype has the highest cosine with the input, so before any training step the
classifier is a nearest-prototype classifier on the model's own representation. The
prototype texts are the task's label descriptions when it has one for every label
(``ClassificationTask.label_descriptions``: the zero-shot prototypes), otherwise the
training examples of each label (their class means).

``balance_classes`` gives each training feature the weight ``n / (k * count of its label)``
(scikit-learn's ``class_weight="balanced"``) that ``SequenceClassificationHead.loss_sum``
multiplies its loss by.

Both are generic: nothing here names an architecture. The layer is found among the head's
``new_modules``; its input is read with a forward pre-hook while the training features (or
the description texts, tokenized the same way) run through the model in eval mode under
``torch.inference_mode``."""

from __future__ import annotations

from typing import Any

from ..head import LOSS_WEIGHT, Features, ModelHead, inputs_of

# Logits of the imprinted layer ~ DEFAULT_TEMPERATURE x cosine(input, prototype): each row's
# norm is the temperature / (mean norm of the inputs it was made from). Measured on Reuters
# acq/crude with minilm (bench/classifier_init.py, bench/results/classifier-init-2026-12-01.json):
# held-out log loss before any training step, from the descriptions (54 articles) 0.430 at 5,
# 0.171 at 20, 0.155 at 30, 0.167 at 40, 0.275 at 80; from class means (two folds) 0.525,
# 0.248, 0.179, 0.153, 0.171; accuracy 0.963 at every value. Trained runs were measured at 20
# (the sentiment plugin's zero-shot SIMILARITY_SCALE too), within 0.016 of the best for descriptions.
DEFAULT_TEMPERATURE = 20.0
MAX_PER_LABEL = 64  # training examples per label read for its class mean (data order; bounds the extra pass)
BATCH = 8  # features per forward pass while reading the layer's inputs


def initialise_classifier(model: Any, head: ModelHead, task: Any, options: Any, features: list[Features],
                          label_ids: dict[str, int], max_length: int,
                          temperature: float = DEFAULT_TEMPERATURE) -> str | None:
    """Imprint the new output layer of ``model``'s classification head; returns what was done
    (for the manifest), or ``None`` when the layer was left as it was.

    ``model``: the loaded ``nlpapp`` model (``trainable_module()``, ``tokenizer``), before
    LoRA is attached. ``features``: the training features (``labels`` an int label id per
    feature). ``label_ids``: label name -> row of the layer. ``max_length``: tokens per
    feature, as in training. Prototype texts: the task's ``label_descriptions(options)``
    when they cover every label in ``label_ids`` (each made into features by the task's own
    ``training_features``, as a one-field input with that label), otherwise the first
    ``MAX_PER_LABEL`` training features of each label. Call it only for a head the base
    did not have: it overwrites the layer.

    Left alone (``None``): a head without labels, features whose labels are not one int
    per feature (token tagging), label ids that are not 0..k-1 or a label with no text, or
    no new module that is a ``torch.nn.Linear`` with one
    output per label (a RoBERTa-style ``classifier`` holds two layers; it is not a Linear).
    The layer's input may be ``[batch, hidden]`` (BERT's pooled output) or
    ``[batch, length, hidden]`` (a decoder's ``score`` reads every position; the model picks
    the last real token, and so does this)."""
    import torch

    if not head.uses_labels or len(label_ids) < 2 or not features:
        return None
    if not all(isinstance(f.get("labels"), int) for f in features):
        return None
    module = model.trainable_module()
    layers = classifier_layers(module, head, len(label_ids))
    if not layers:
        return None
    descriptions = _descriptions(task, options, label_ids)
    if descriptions is not None:
        from ..task import TrainingContext

        ctx = TrainingContext(model, head.name, max_length, options, label_ids)
        field, target = task.input_fields[0], task.target_fields[0]
        groups = {label: [f for text in texts for f in task.training_features(
                      task.make_input({field: text}, "label description"), {target: label}, ctx)]
                  for label, texts in descriptions.items()}
        source = "prototypes from label descriptions"
    else:
        groups = {label: [f for f in features if f["labels"] == i][:MAX_PER_LABEL] for label, i in label_ids.items()}
        source = f"class means of {sum(len(g) for g in groups.values())} training examples"
    if sorted(label_ids.values()) != list(range(len(label_ids))) or not all(groups.values()):
        return None  # rows are label ids 0..k-1, each needs at least one text
    pad_id = model.tokenizer.pad_token_id
    for layer in layers:
        rows = []
        for label in sorted(label_ids, key=label_ids.get):
            inputs = layer_inputs(module, layer, head, groups[label], pad_id)
            rows.append(inputs)
        norm = torch.cat(rows).norm(dim=-1).mean().clamp(min=1e-6)
        prototypes = torch.stack([torch.nn.functional.normalize(
            torch.nn.functional.normalize(r, dim=-1).mean(0), dim=0) for r in rows])
        with torch.no_grad():
            layer.weight.copy_((temperature / norm * prototypes).to(layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.zero_()
    return f"{source} (weight imprinting, temperature {temperature:g})"


def classifier_layers(module: Any, head: ModelHead, n_labels: int) -> list[Any]:
    """The ``torch.nn.Linear`` modules among ``head.new_modules`` (matched by the last part
    of their name) with ``n_labels`` outputs; empty when there is none."""
    import torch

    return [m for name, m in module.named_modules()
            if name.rsplit(".", 1)[-1] in head.new_modules and isinstance(m, torch.nn.Linear)
            and m.out_features == n_labels]


def layer_inputs(module: Any, layer: Any, head: ModelHead, features: list[Features], pad_id: int) -> Any:
    """``[len(features), in_features]`` float32: what ``layer`` reads for each feature, in
    eval mode (no dropout) under ``inference_mode``. A 3-D input (a value per position) is
    read at each row's last real token."""
    import torch

    captured: list[Any] = []

    def grab(_module: Any, args: tuple[Any, ...]) -> None:
        captured.append(args[0].detach().float())

    was_training = module.training
    device = next(module.parameters()).device
    handle = layer.register_forward_pre_hook(grab)
    module.eval()
    rows = []
    try:
        with torch.inference_mode():
            for start in range(0, len(features), BATCH):
                batch = head.collate(features[start:start + BATCH], pad_id)
                captured.clear()
                module(**{k: v.to(device) for k, v in inputs_of(batch).items()})
                x = captured[0]
                if x.dim() == 3:
                    last = batch["attention_mask"].sum(1).to(x.device) - 1
                    x = x[torch.arange(x.shape[0], device=x.device), last]
                rows.append(x.clone())
    finally:
        handle.remove()
        module.train(was_training)
    return torch.cat(rows).cpu()


def balance_classes(features: list[Features], label_ids: dict[str, int]) -> dict[str, float] | None:
    """Set ``features[i][LOSS_WEIGHT]`` to ``n / (k * count of its label)`` — scikit-learn's
    ``class_weight="balanced"`` (``compute_class_weight``): n features, k labels present —
    and return the weight per label. These weights average to exactly 1 over the features,
    so the loop's division by the feature count still gives a mean: the class-balanced
    mean loss of the data set (each label weighs 1/k), estimated without bias by every
    batch. Balanced data get weight 1 everywhere.

    ``None``, and nothing set, when the features do not have one int label each (a label
    per token). Raises ``ValueError`` when a feature's label is not one of ``label_ids``'s ids."""
    if not features or not all(isinstance(f.get("labels"), int) for f in features):
        return None
    ids = set(label_ids.values())
    counts = {i: 0 for i in ids}
    for f in features:
        if f["labels"] not in ids:
            raise ValueError(f"feature label {f['labels']!r} is not a label id ({sorted(ids)})")
        counts[f["labels"]] += 1
    present = [i for i in ids if counts[i]]
    weight = {i: len(features) / (len(present) * counts[i]) for i in present}
    for f in features:
        f[LOSS_WEIGHT] = weight[f["labels"]]
    return {label: weight[i] for label, i in label_ids.items() if i in weight}


def _descriptions(task: Any, options: Any, label_ids: dict[str, int]) -> dict[str, list[str]] | None:
    describe = getattr(task, "label_descriptions", None)
    found = describe(options) if describe else None
    if not found or not all(found.get(label) for label in label_ids):
        return None
    return {label: list(found[label]) for label in label_ids}
