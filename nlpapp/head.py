"""Model heads: what a model's output layer computes, and everything that follows from it.

A head says which transformers class loads the model, which ``Model`` wraps it for tasks,
which peft task type LoRA uses, how training features are padded into a batch, how the
loss is summed, which freshly initialised modules are saved beside the LoRA weights, and
how merged and unmerged weights are compared. Heads are registered through the
``register_heads`` hook; the built-in ones (``nlpapp.runtime.heads``) come from the core
plugin through that same hook, so a plugin's head is a peer of theirs.

A task lists the heads it can use (``TaskKind.heads``); a ``Model`` says which one it has
(``Model.head``). Nothing heavy is imported here: torch loads inside the methods."""

from __future__ import annotations

from typing import Any, ClassVar

IGNORE = -100  # label ids the loss skips (padding, prompt tokens, word pieces after the first)
Features = dict[str, Any]  # one training example as plain lists: input_ids, labels, ...
Batch = dict[str, Any]  # the same, padded into tensors


class Head:
    """The names of the built-in heads; any other registered name is as good."""

    CAUSAL_LM = "causal-lm"
    SEQ2SEQ_LM = "seq2seq-lm"
    SEQUENCE_CLASSIFICATION = "sequence-classification"
    TOKEN_CLASSIFICATION = "token-classification"  # registered by the token-classification plugin
    EXTRACTIVE_QA = "extractive-qa"
    ENCODER = "encoder"  # a bare encoder: embeddings only


class ModelHead:
    """Base class of a registered head. Subclass it, set the class attributes, and override
    what differs; the defaults fit an encoder head with one label per token or sequence.

    Example (a token-classification head, as the ``token-classification`` plugin has)::

        class TokenClassificationHead(ModelHead):
            name = "token-classification"
            description = "a label per token (BIO tags)"
            auto_class = "AutoModelForTokenClassification"
            architectures = ("ForTokenClassification",)
            peft_task_type = "TOKEN_CLS"
            uses_labels = True
            new_modules = ("classifier",)
            model_class = TokenClassifier  # an nlpapp.HFModel subclass
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    auto_class: ClassVar[str]  # a transformers auto class, e.g. "AutoModelForCausalLM"
    model_class: ClassVar[type]  # the nlpapp.Model subclass that wraps the loaded torch module
    architectures: ClassVar[tuple[str, ...]] = ()  # endings of config.architectures that mean this head
    peft_task_type: ClassVar[str | None] = None  # peft's TaskType name; None: LoRA cannot train it
    uses_labels: ClassVar[bool] = False  # label names come from the data (num_labels, id2label)
    new_modules: ClassVar[tuple[str, ...]] = ()  # modules a new head adds; saved with the adapter
    one_pass: ClassVar[bool] = True  # reads its input in one forward pass (not token by token)
    language_model: ClassVar[bool] = False  # its loss is per token of text: perplexity is meaningful

    def detects(self, config: Any, architecture: str) -> bool:
        """Whether a checkpoint whose config lists ``architecture`` has this head."""
        return bool(self.architectures) and architecture.endswith(self.architectures)

    def label_config(self, labels: tuple[str, ...]) -> dict[str, Any]:
        """Config overrides that give a new head one output per label (transformers' names)."""
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)}}

    # --- training ------------------------------------------------------------------

    def collate(self, features: list[Features], pad_id: int) -> Batch:
        """Right-pad ``features`` into tensors: ``input_ids`` with ``pad_id``, list-valued
        labels with ``IGNORE``; an ``attention_mask`` marks the real tokens. Targets
        (``TARGET_KEYS``, a ``loss_weight`` among them) become tensors the model is not given."""
        return pad_features(features, pad_id)

    def target_count(self, feature: Features) -> int:
        """How many loss terms a feature adds: its labelled tokens, or 1 for a label per sequence."""
        labels = feature.get("labels")
        if not isinstance(labels, list):
            return 1
        return sum(1 for label in labels if label != IGNORE)

    def loss_sum(self, model: Any, batch: Batch) -> Any:
        """The summed cross-entropy of a batch; the training loop divides by the global
        target count so every process and micro-batch weighs each target the same."""
        import torch.nn.functional as F

        out = model(**inputs_of(batch))
        logits = out.logits.float()
        labels = batch["labels"]
        if labels.dim() > 1:  # a label per token
            logits, labels = logits.flatten(0, 1), labels.flatten()
        return F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum")

    def probe(self, model: Any, encoded: Batch) -> Any:
        """The raw outputs (float logits) on a tokenized probe batch: ``adapters merge``
        checks that merged and unmerged weights give the same."""
        return model(**encoded).logits.float()


LOSS_WEIGHT = "loss_weight"  # a feature's weight in the loss (class weights; nlpapp.training.head_init)
TARGET_KEYS = ("labels", "start_positions", "end_positions", LOSS_WEIGHT)


def inputs_of(batch: Batch) -> Batch:
    """The model inputs of a batch: everything but the targets."""
    return {k: v for k, v in batch.items() if k not in TARGET_KEYS}


def pad_features(features: list[Features], pad_id: int) -> Batch:
    """Right-pad a list of features into tensors (see ``ModelHead.collate``)."""
    import torch

    longest = max(len(f["input_ids"]) for f in features)
    batch: Batch = {
        "input_ids": torch.tensor([f["input_ids"] + [pad_id] * (longest - len(f["input_ids"])) for f in features]),
        "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (longest - len(f["input_ids"]))
                                        for f in features]),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = torch.tensor(
            [f["token_type_ids"] + [0] * (longest - len(f["token_type_ids"])) for f in features])
    for key in TARGET_KEYS:
        if key not in features[0]:
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], list):
            width = max(len(v) for v in values)
            batch[key] = torch.tensor([v + [IGNORE] * (width - len(v)) for v in values])
        else:
            batch[key] = torch.tensor(values)
    return batch
