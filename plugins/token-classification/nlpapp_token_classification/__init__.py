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

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from nlpapp import (IGNORE, DatasetSpec, Head, HFModel, InputError, MetricResult, MetricSpec, ModelHead,
                    ModelLoadError, TaskKind, hookimpl, packaged_jsonl)

WORD = re.compile(r"\S+")
OUTSIDE = "O"


@dataclass
class TokenClassificationInput:
    text: str


@dataclass
class Entity:
    text: str
    label: str  # the entity type: PER, ORG, LOC, MISC, ...
    start: int  # character offsets in the input text: text[start:end] == self.text
    end: int
    score: float  # mean probability of the entity's word tags


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

class TokenClassification(TaskKind):
    name = "token-classification"
    aliases = ("ner",)
    description = "Tag each word of a text (named entities: BIO tags) and return the entity spans."
    heads = (Head.TOKEN_CLASSIFICATION,)
    default_model = "minilm"
    Input = TokenClassificationInput
    Output = TokenClassificationOutput
    target_fields = ("tags",)
    metrics = ("seqeval",)
    notes = ("No NER weights ship offline: train an adapter on the default minilm (nlpapp train ner --data "
             "FILE) or pass --model with a checkpoint fine-tuned for NER, such as a CoNLL-2003 BERT.")

    def make_input(self, record: dict[str, Any], where: str = "input") -> TokenClassificationInput:
        """Also takes CoNLL-style records whose words are a list (``tokens``, or ``text``)."""
        record = dict(record)
        words = record.get("text", record.get("tokens"))
        if isinstance(words, list):
            record["text"] = " ".join(str(w) for w in words)
        return super().make_input(record, where)

    def make_example(self, record: dict[str, Any], where: str = "input") -> tuple[Any, dict[str, str]]:
        """A training example; ``tags`` is one tag per word, as a list or space-separated."""
        record = dict(record)
        if isinstance(record.get("tags"), list):
            record["tags"] = " ".join(str(t) for t in record["tags"])
        item, targets = super().make_example(record, where)
        words, tags = item.text.split(), targets["tags"].split()
        if len(words) != len(tags):
            raise InputError(f"{where}: {len(tags)} tags for {len(words)} words; give one tag per "
                             "whitespace-separated word of 'text'")
        return item, targets

    def references(self, record: dict[str, Any], where: str = "input") -> list[str]:
        """One reference: the tag sequence (a list of tags is one sequence, not alternatives)."""
        _, targets = self.make_example(record, where)
        return [targets["tags"]]

    def training_head(self, base: str) -> str:
        return Head.TOKEN_CLASSIFICATION  # an encoder gets a new token-classification head

    def label_names(self, targets: dict[str, str]) -> list[str]:
        return targets["tags"].split()

    def training_features(self, item, targets, ctx):
        words, tags = item.text.split(), targets["tags"].split()
        encoded = ctx.model.tokenizer(words, is_split_into_words=True, truncation=True, max_length=ctx.max_length)
        labels, previous = [], None
        for word in encoded.word_ids():
            # the first piece of each word carries its tag; specials and later pieces are ignored
            labels.append(IGNORE if word is None or word == previous else ctx.label_ids[tags[word]])
            previous = word
        feature = {"input_ids": encoded["input_ids"], "labels": labels}
        if "token_type_ids" in encoded:
            feature["token_type_ids"] = encoded["token_type_ids"]
        return [feature]

    def input_length(self, item: TokenClassificationInput) -> int:
        return len(item.text)

    def predict(self, model, inputs, options, stream=None):
        spans = [[(m.group(), m.start(), m.end()) for m in WORD.finditer(item.text)] for item in inputs]
        tagged = model.tag_words([[w for w, _, _ in words] for words in spans])
        outputs = []
        for item, words, probs in zip(inputs, spans, tagged):
            tags = [max(p, key=p.get) if p else OUTSIDE for p in probs]
            scores = [p.get(t, 0.0) for p, t in zip(probs, tags)]
            outputs.append(TokenClassificationOutput(entities(item.text, words, tags, scores), tags))
        return outputs

    def prediction_text(self, output: TokenClassificationOutput) -> str:
        return " ".join(output.tags)

    def render(self, output: TokenClassificationOutput) -> str:
        if not output.entities:
            return "(no entities)"
        return "\n".join(f"{e.label}\t{e.text}\t[{e.start}, {e.end})\t(score {e.score:.3f})" for e in output.entities)


def entities(text: str, words: Sequence[tuple[str, int, int]], tags: Sequence[str],
             scores: Sequence[float]) -> list[Entity]:
    """The entity spans of BIO ``tags`` over ``words`` (word, start, end). An ``I-X`` that
    does not continue an ``X`` starts a new entity, as seqeval's default mode reads it."""
    found: list[Entity] = []
    current: tuple[str, int, list[int]] | None = None  # label, first word, word indices

    def close() -> None:
        if current is not None:
            label, _, members = current
            start, end = words[members[0]][1], words[members[-1]][2]
            found.append(Entity(text[start:end], label, start, end, sum(scores[i] for i in members) / len(members)))

    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current[0] == label:
            current[2].append(i)
            continue
        close()
        current = (label, i, [i]) if prefix in ("B", "I") and label else None
    close()
    return found


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
