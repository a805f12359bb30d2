"""The built-in heads, registered by the core plugin through ``register_heads`` exactly as
a plugin registers its own: causal LM, seq2seq LM, sequence classification, extractive QA
and a bare encoder (embeddings)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ..head import IGNORE, LOSS_WEIGHT, Batch, Features, Head, ModelHead, inputs_of
from . import hf

if TYPE_CHECKING:
    from ..registry import Registry


class CausalLMHead(ModelHead):
    name = Head.CAUSAL_LM
    description = "next-token prediction (decoder-only LMs: Llama, Qwen, GPT-2)"
    auto_class = "AutoModelForCausalLM"
    model_class = hf.CausalLM
    architectures = ("ForCausalLM", "LMHeadModel")
    peft_task_type = "CAUSAL_LM"
    one_pass = False
    language_model = True

    def detects(self, config: Any, architecture: str) -> bool:
        return not getattr(config, "is_encoder_decoder", False) and super().detects(config, architecture)

    def target_count(self, feature: Features) -> int:
        labels = feature["labels"]
        return sum(1 for label in labels[1:] if label != IGNORE)  # position p predicts token p + 1

    def loss_sum(self, model: Any, batch: Batch) -> Any:
        return causal_loss_sum(model, inputs_of(batch), batch["labels"])


class Seq2SeqLMHead(ModelHead):
    name = Head.SEQ2SEQ_LM
    description = "encoder-decoder generation (T5, BART, Marian)"
    auto_class = "AutoModelForSeq2SeqLM"
    model_class = hf.Seq2SeqLM
    peft_task_type = "SEQ_2_SEQ_LM"
    one_pass = False
    language_model = True

    def detects(self, config: Any, architecture: str) -> bool:
        return bool(getattr(config, "is_encoder_decoder", False))

    def loss_sum(self, model: Any, batch: Batch) -> Any:
        import torch.nn.functional as F

        out = model(**inputs_of(batch), labels=batch["labels"])  # the model shifts labels into decoder inputs
        return F.cross_entropy(out.logits.flatten(0, 1).float(), batch["labels"].flatten(),
                               ignore_index=IGNORE, reduction="sum")

    def probe(self, model: Any, encoded: Batch) -> Any:
        return model(**encoded, decoder_input_ids=encoded["input_ids"][:, :4]).logits.float()


class SequenceClassificationHead(ModelHead):
    name = Head.SEQUENCE_CLASSIFICATION
    description = "a label per text (sentiment, topics)"
    auto_class = "AutoModelForSequenceClassification"
    model_class = hf.SequenceClassifier
    architectures = ("ForSequenceClassification",)
    peft_task_type = "SEQ_CLS"
    uses_labels = True
    new_modules = ("classifier", "score")  # BERT-style and decoder-style names of the new layer

    def loss_sum(self, model: Any, batch: Batch) -> Any:
        """``sum_i w_i * CE_i`` over the ``[batch]`` sequences, ``w_i`` the feature's
        ``loss_weight`` (1 without one). The loop divides by the feature count
        (``target_count`` stays 1 per feature), not by ``sum_i w_i`` as torch's
        ``cross_entropy(weight=..., reduction="mean")`` does: with class weights that average
        1 over the training set (``head_init.balance_classes``), that is an unbiased estimate
        of the class-balanced mean loss, and it splits across micro-batches and processes
        exactly as the unweighted sum does."""
        import torch.nn.functional as F

        losses = F.cross_entropy(model(**inputs_of(batch)).logits.float(), batch["labels"], ignore_index=IGNORE,
                                 reduction="none")
        weights = batch.get(LOSS_WEIGHT)
        return (losses * weights.to(losses.dtype)).sum() if weights is not None else losses.sum()


class ExtractiveQAHead(ModelHead):
    name = Head.EXTRACTIVE_QA
    description = "answer spans: a start and an end position in the context (SQuAD)"
    auto_class = "AutoModelForQuestionAnswering"
    model_class = hf.ExtractiveQA
    architectures = ("ForQuestionAnswering",)
    peft_task_type = "QUESTION_ANS"
    new_modules = ("qa_outputs",)

    def loss_sum(self, model: Any, batch: Batch) -> Any:
        import torch.nn.functional as F

        out = model(**inputs_of(batch))
        return (F.cross_entropy(out.start_logits.float(), batch["start_positions"], reduction="sum")
                + F.cross_entropy(out.end_logits.float(), batch["end_positions"], reduction="sum")) / 2

    def probe(self, model: Any, encoded: Batch) -> Any:
        import torch

        out = model(**encoded)
        return torch.cat([out.start_logits, out.end_logits], dim=-1).float()


class EncoderHead(ModelHead):
    name = Head.ENCODER
    description = "a bare encoder: mean-pooled sentence embeddings"
    auto_class = "AutoModel"
    model_class = hf.Encoder
    peft_task_type = "FEATURE_EXTRACTION"

    def probe(self, model: Any, encoded: Batch) -> Any:
        return model(**encoded).last_hidden_state.float()


BUILTIN_HEADS = (CausalLMHead(), Seq2SeqLMHead(), SequenceClassificationHead(), ExtractiveQAHead(),
                 EncoderHead())


def causal_loss_sum(model: Any, inputs: dict[str, Any], labels: Any) -> Any:
    """Summed next-token loss. Where the model can (``logits_to_keep``), logits are computed
    only at positions some row predicts a target from: prompt tokens are masked in
    instruction tuning, and their logits (batch x length x vocabulary floats, several
    copies in backward) were the largest tensors of a step."""
    import torch.nn.functional as F

    targets = labels[:, 1:]  # position p predicts token p + 1
    if accepts_logits_to_keep(model):
        positions = (targets != IGNORE).any(0).nonzero().squeeze(1)
        logits = model(**inputs, logits_to_keep=positions).logits
        targets = targets[:, positions]
    else:
        logits = model(**inputs).logits[:, :-1]
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether the Hugging Face model under DDP and peft wrappers takes ``logits_to_keep``."""
    inner = getattr(model, "module", model)  # DistributedDataParallel
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # peft
    return _forward_takes_logits_to_keep(type(inner))


@functools.cache
def _forward_takes_logits_to_keep(model_class: type) -> bool:  # once per class, not per step
    import inspect

    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def builtin_registry() -> "Registry[ModelHead]":
    """A registry holding only the built-in heads, for loading a model without plugins."""
    from ..registry import Registry

    registry: Registry[ModelHead] = Registry("head", ModelHead)
    for head in BUILTIN_HEADS:
        registry.add(head, "nlpapp.core")
    return registry
