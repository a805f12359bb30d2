"""Text classification (transformers' ``text-classification``; ``sentiment`` is its older
name): text -> label and score.

With a classification-head model the labels come from its config. With a bare encoder
(the embedded all-MiniLM-L6-v2) it classifies by similarity to label descriptions: each
label is the mean embedding of a few example sentences, and the text takes the label
whose description it is closest to. The labels are given with ``--labels`` (a list, or the
name of a preset); sentiment is the default preset. Ships the task file ``reuters-topics``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlpapp import (ClassificationTask, TrainingRecipe, DatasetSpec, Head, InputError, TaskFolder, TaskOptions, hookimpl, option,
                    packaged_jsonl)

# Written for this task; several phrasings per label make the centroid less brittle.
SENTIMENT_LABELS = {
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
LABEL_PRESETS = {"sentiment": SENTIMENT_LABELS}  # --labels NAME: labels and their descriptions
DEFAULT_LABELS = "sentiment"
LABEL_DESCRIPTIONS = SENTIMENT_LABELS  # the old name of the default preset
SIMILARITY_SCALE = 20.0  # cosine similarities -> softmax logits; fit by eye on the sample set


@dataclass
class TextClassificationInput:
    text: str


@dataclass
class TextClassificationOutput:
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def _check_labels(value: str) -> str | None:
    try:
        parse_labels(value)
    except InputError as exc:
        return str(exc).removeprefix("--labels").lstrip(": ")  # "needs at least two labels", ...
    return None


@dataclass(frozen=True)
class TextClassificationOptions(TaskOptions):
    labels: str | None = option(None, "Encoder mode: comma-separated labels, each LABEL or LABEL=description, or a "
                                      "preset's name (sentiment) [default: sentiment: positive,negative with "
                                      "built-in descriptions].", check=_check_labels)


class TextClassification(ClassificationTask):
    name = "text-classification"
    # its name before transformers' task names were adopted, and transformers' own alias
    aliases = ("sentiment", "sentiment-analysis")
    description = ("Label a text: the model's labels, or --labels (default: the sentiment preset, "
                   "positive or negative).")
    heads = (Head.SEQUENCE_CLASSIFICATION, Head.ENCODER)
    default_model = "minilm"
    Input = TextClassificationInput
    Output = TextClassificationOutput
    Options = TextClassificationOptions
    # measured on Reuters topics with minilm (docs/training.md, "Recipes"): the old default
    # 2e-4 for 5 epochs predicted one class for every article; the head needs larger steps
    recipe = TrainingRecipe(lr=1e-3, head_lr=2e-3, epochs=10, min_steps=50, max_length=256, select_by="macro_f1",
                            patience=3)
    notes = ("The default minilm has no trained classification head; it compares each text with label "
             "descriptions (zero-shot; the sentiment preset unless --labels says otherwise). See "
             "docs/models.md for its measured accuracy; pass --model with a trained classifier, or "
             "train an adapter, for better results.")

    def __init__(self) -> None:
        self._centroids: dict[tuple[int, str], dict[str, list[float]]] = {}

    def label_scores(self, model, texts, options):
        if model.head == Head.SEQUENCE_CLASSIFICATION:
            return model.classify(texts)
        centroids = self._label_centroids(model, options.labels)
        scored = []
        for vector in model.embed(texts):  # zero-shot: softmax over similarities to each label
            logits = {label: SIMILARITY_SCALE * _dot(vector, c) for label, c in centroids.items()}
            top = max(logits.values())
            exp = {label: math.exp(v - top) for label, v in logits.items()}
            total = sum(exp.values())
            scored.append({label: v / total for label, v in exp.items()})
        return scored

    def label_descriptions(self, options) -> dict[str, list[str]]:
        """The zero-shot labels' descriptions (``--labels``, default the sentiment preset);
        training imprints a new head from them when they name every training label."""
        return parse_labels(options.labels)

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

    def render(self, output: TextClassificationOutput) -> str:
        return f"{output.label}\t(score {output.score:.3f})"


def parse_labels(option: str | None) -> dict[str, list[str]]:
    """Labels and their descriptions from ``--labels``: a preset's name (``sentiment``, the
    default), or LABEL[=description],... where a bare label known to a preset keeps its
    preset's descriptions."""
    if not option:
        return LABEL_PRESETS[DEFAULT_LABELS]
    if option.strip() in LABEL_PRESETS:
        return LABEL_PRESETS[option.strip()]
    known = {label: d for preset in LABEL_PRESETS.values() for label, d in preset.items()}
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
        labels[label] = [description.strip()] if description.strip() else (known.get(label) or [label])
    if len(labels) < 2:
        raise InputError(f"--labels needs at least two labels, or a preset's name ({', '.join(LABEL_PRESETS)})")
    return labels


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


@hookimpl
def register_task_kinds(register):
    register(TextClassification())


@hookimpl
def register_datasets(register):
    register(DatasetSpec("sentiment-sample", "text-classification", "40 one-sentence reviews written for nlpapp, labelled positive or negative.",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))


@hookimpl
def register_task_folders(register):
    from pathlib import Path

    register(TaskFolder("text-classification examples", str(Path(__file__).parent / "tasks")))
