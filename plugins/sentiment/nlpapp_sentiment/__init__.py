"""Sentiment: text -> label and score.

With a classification-head model the labels come from its config. With a bare encoder
(the embedded all-MiniLM-L6-v2) it classifies by similarity to label descriptions: each
label is the mean embedding of a few example sentences, and the text takes the label
whose description it is closest to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlpapp import DatasetSpec, InputError, MetricSpec, Head, TaskKind, TaskOption, hookimpl
from nlpapp.datasets import packaged_jsonl
from nlpapp.training import features

# Written for this task; several phrasings per label make the centroid less brittle.
LABEL_DESCRIPTIONS = {
    "positive": [
        "This is great, I loved it.",
        "A wonderful, delightful experience. Highly recommended.",
        "I am very happy and satisfied with this.",
        "Excellent quality, it works perfectly.",
    ],
    "negative": [
        "This is terrible, I hated it.",
        "An awful, disappointing experience. A waste of time and money.",
        "I am very unhappy and angry about this.",
        "Poor quality, it broke and does not work.",
    ],
}
SIMILARITY_SCALE = 20.0  # cosine similarities -> softmax logits; fit by eye on the sample set


@dataclass
class SentimentInput:
    text: str


@dataclass
class SentimentOutput:
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


class Sentiment(TaskKind):
    name = "sentiment"
    description = "Label the sentiment of a text (positive or negative, or the model's labels)."
    heads = (Head.SEQUENCE_CLASSIFICATION, Head.ENCODER)
    default_model = "minilm"
    Input = SentimentInput
    Output = SentimentOutput
    options = (TaskOption("labels", str, None,
                          "Encoder mode: comma-separated labels, each LABEL or LABEL=description "
                          "[default: positive,negative with built-in descriptions]."),)
    notes = ("The default minilm has no trained sentiment head; it compares each text with label "
             "descriptions (zero-shot). See docs/models.md for its measured accuracy; pass --model "
             "with a sentiment classifier for better results.")

    def __init__(self) -> None:
        self._centroids: dict[tuple[int, str], dict[str, list[float]]] = {}

    def predict(self, model, inputs, options, stream=None):
        texts = [item.text for item in inputs]
        if model.head == Head.SEQUENCE_CLASSIFICATION:
            return [_best(scores) for scores in model.classify(texts)]
        centroids = self._label_centroids(model, options.get("labels"))
        outputs = []
        for vector in model.embed(texts):
            logits = {label: SIMILARITY_SCALE * _dot(vector, c) for label, c in centroids.items()}
            top = max(logits.values())
            exp = {label: math.exp(v - top) for label, v in logits.items()}
            total = sum(exp.values())
            outputs.append(_best({label: v / total for label, v in exp.items()}))
        return outputs

    def _label_centroids(self, model, labels_option: str | None) -> dict[str, list[float]]:
        key = (id(model), labels_option or "")
        if key not in self._centroids:
            descriptions = parse_labels(labels_option)
            centroids = {}
            for label, sentences in descriptions.items():
                vectors = model.embed(sentences)
                mean = [sum(col) / len(vectors) for col in zip(*vectors)]
                norm = math.sqrt(sum(x * x for x in mean)) or 1.0
                centroids[label] = [x / norm for x in mean]
            self._centroids[key] = centroids
        return self._centroids[key]

    target_fields = ("label",)
    metrics = ("classification",)

    def training_head(self, base):
        return Head.SEQUENCE_CLASSIFICATION  # an encoder gets a new classification head

    def training_features(self, item, targets, ctx):
        return [features.classification(ctx.model.tokenizer, item.text, ctx.label_ids[targets["label"]],
                                        ctx.max_length)]

    def render(self, output: SentimentOutput) -> str:
        return f"{output.label}\t(score {output.score:.3f})"


def parse_labels(option: str | None) -> dict[str, list[str]]:
    if not option:
        return LABEL_DESCRIPTIONS
    labels: dict[str, list[str]] = {}
    parts = option.split(",")
    described = [p for p in parts if "=" in p]
    if described and len(described) < len(parts):  # a comma inside a description split it
        bare = next(p for p in parts if "=" not in p).strip()
        raise InputError(f"--labels: {bare!r} has no description while other labels do; "
                         "a description cannot contain commas (use ';')")
    for part in parts:
        label, _, description = part.partition("=")
        label = label.strip()
        if not label:
            raise InputError(f"--labels: empty label in {option!r}")
        labels[label] = [description.strip()] if description.strip() else (
            LABEL_DESCRIPTIONS.get(label) or [label])
    if len(labels) < 2:
        raise InputError("--labels needs at least two labels")
    return labels


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _best(scores: dict[str, float]) -> SentimentOutput:
    label = max(scores, key=scores.get)
    return SentimentOutput(label, scores[label], scores)


@hookimpl
def register_task_kinds(register):
    register(Sentiment())


@hookimpl
def register_metrics(register):
    from nlpapp.evaluation import metrics

    register(MetricSpec("classification", "accuracy and macro-F1, with a confusion matrix", metrics.classification))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("sentiment-sample", "sentiment", "40 one-sentence reviews written for nlpapp, labelled positive or negative.",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))
