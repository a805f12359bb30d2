"""Token classification (named-entity recognition): a BIO tag for each word of a text, and
the entity spans the tags make, with character offsets.

The plugin brings its own model head, registered through ``register_heads`` as any
plugin's would be: transformers' ``AutoModelForTokenClassification``, a label per word
(the first sub-word token of each word carries it, as in the CoNLL-2003 recipe of
Devlin et al. 2019), peft's ``TOKEN_CLS`` task type, and a new ``classifier`` layer that
is trained whole and saved beside the LoRA weights. A bare encoder (the embedded
``minilm``) gets that head when trained; a checkpoint fine-tuned for NER is used as it is.

Words are the text's whitespace-separated pieces, so split punctuation off as CoNLL does
("Acme Corp ." rather than "Acme Corp.") for the tags of a training set to line up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from nlpapp import (DatasetSpec, TrainingRecipe, Entity, Head, HFModel, InputError, MetricResult, MetricSpec, ModelHead, ModelLoadError,
                    TokenTaggingTask, hookimpl, packaged_jsonl)


@dataclass
class TokenClassificationInput:
    text: str


@dataclass
class TokenClassificationOutput:
    entities: list[Entity]
    tags: list[str] = field(default_factory=list)  # one BIO tag per whitespace-separated word


# --- the head ------------------------------------------------------------------------------

class TokenClassifier(HFModel):
    """A transformers ``*ForTokenClassification`` model: label probabilities per word."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"{self.name}: token classification needs a fast tokenizer (word alignment)")
        self.tokenizer.padding_side = "right"
        id2label = self.config.id2label or {}
        self.labels = tuple(str(id2label.get(i, f"LABEL_{i}")) for i in range(self.config.num_labels))

    def tag_words(self, words: Sequence[Sequence[str]]) -> list[list[dict[str, float]]]:
        """For each text (a list of words), one ``{label: probability}`` per word, read at
        the word's first sub-word token; a word past the model's window gets ``{}``."""
        encoded = self.encode([list(w) for w in words], is_split_into_words=True)
        probs = self.forward(encoded).logits.float().softmax(-1).cpu().tolist()
        tagged = []
        for row, row_words in enumerate(words):
            per_word: list[dict[str, float]] = [{} for _ in row_words]
            seen = set()
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word not in seen:
                    seen.add(word)
                    per_word[word] = dict(zip(self.labels, probs[row][position]))
            tagged.append(per_word)
        return tagged


class TokenClassificationHead(ModelHead):
    name = Head.TOKEN_CLASSIFICATION
    description = "a label per token (named entities as BIO tags)"
    auto_class = "AutoModelForTokenClassification"
    model_class = TokenClassifier
    architectures = ("ForTokenClassification",)
    peft_task_type = "TOKEN_CLS"
    uses_labels = True
    new_modules = ("classifier",)
    # collate, loss_sum (cross-entropy over labelled tokens) and target_count are the defaults


# --- the task ------------------------------------------------------------------------------

class TokenClassification(TokenTaggingTask):
    """The stages (words -> tag_words -> BIO tags -> entity spans) and the word-aligned
    training features come from ``nlpapp.TokenTaggingTask``."""

    name = "token-classification"
    aliases = ("ner",)
    description = "Tag each word of a text (named entities: BIO tags) and return the entity spans."
    default_model = "minilm"
    Input = TokenClassificationInput
    Output = TokenClassificationOutput
    metrics = ("seqeval",)
    # measured on the plugin's sample (docs/training.md): 10 epochs at 2e-3 gave entity F1 85
    recipe = TrainingRecipe(lr=2e-3, head_lr=2e-3, epochs=10, min_steps=100, max_length=256, select_by="f1",
                            patience=3)
    notes = ("No NER weights ship offline: train an adapter on the default minilm (nlpapp train ner --data "
             "FILE) or pass --model with a checkpoint fine-tuned for NER, such as a CoNLL-2003 BERT.")


# --- the metric ----------------------------------------------------------------------------

def seqeval_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> MetricResult:
    """Entity-level micro precision, recall and F1 (x100) as ``seqeval`` computes them (the
    CoNLL-2000 evaluation: an entity counts when its type and both boundaries match).
    Per-sentence counts are kept so a bootstrap resample costs a sum."""
    from importlib.metadata import version

    from seqeval.metrics.sequence_labeling import get_entities

    counts = []  # (correct, predicted, gold) per sentence
    for n, (predicted, gold) in enumerate(zip(predictions, references), start=1):
        if len(gold) != 1:
            raise InputError(f"example {n}: seqeval takes one reference tag sequence, got {len(gold)}")
        pred_tags, gold_tags = predicted.split(), gold[0].split()
        if len(pred_tags) != len(gold_tags):
            raise InputError(f"example {n}: {len(pred_tags)} predicted tags for {len(gold_tags)} reference tags")
        pred_set, gold_set = set(get_entities(pred_tags)), set(get_entities(gold_tags))
        counts.append((len(pred_set & gold_set), len(pred_set), len(gold_set)))

    def scores(indices: Sequence[int]) -> dict[str, float]:
        correct = sum(counts[i][0] for i in indices)
        predicted = sum(counts[i][1] for i in indices)
        gold = sum(counts[i][2] for i in indices)
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1}

    signature = f"seqeval:{version('seqeval')}|mode=default|average=micro|level=entity"
    return MetricResult(scores(range(len(counts))), signature, scores)


# --- registration --------------------------------------------------------------------------

@hookimpl
def register_heads(register):
    register(TokenClassificationHead())


@hookimpl
def register_task_kinds(register):
    register(TokenClassification())


@hookimpl
def register_metrics(register):
    register(MetricSpec("seqeval", "entity-level precision, recall and F1 from seqeval (CoNLL)", seqeval_scores))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("ner-sample-train", "token-classification",
                         "120 news-style sentences written for nlpapp, tagged PER/ORG/LOC/MISC (BIO).",
                         open=packaged_jsonl(__name__, "data/train.jsonl")))
    register(DatasetSpec("ner-sample-dev", "token-classification",
                         "40 held-out sentences in the same style, with other names (BIO).",
                         open=packaged_jsonl(__name__, "data/dev.jsonl")))
