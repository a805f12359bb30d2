"""The core metrics, registered by the core plugin (``core_metrics``) so that any task may
name them whichever task plugins are installed. Each calls the reference library
(sacrebleu, rouge-score) or follows the official definition (SQuAD), and returns a
``MetricResult``: the scores, a signature of every setting that changes the numbers, and a
way to recompute the scores on a resample of the examples (for bootstrap intervals).

Nothing here is a hand-written BLEU or ROUGE."""

from __future__ import annotations

import collections
import functools
import re
import string
from dataclasses import dataclass
from typing import Any, Callable, Sequence

References = Sequence[Sequence[str]]  # one or more references per example


@dataclass
class MetricResult:
    scores: dict[str, float]
    signature: str
    resample: Callable[[Sequence[int]], dict[str, float]]  # example indices -> the same scores


def _library_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


# --- sacrebleu: BLEU, chrF, TER ------------------------------------------------------------

def _sacrebleu(metric: Any, name: str, predictions: Sequence[str], references: References) -> MetricResult:
    """Corpus score from sacrebleu, and resampling through its sufficient statistics (the
    way sacrebleu's own significance tests do), so a bootstrap sample costs a sum."""
    import numpy as np

    streams = [list(r) for r in zip(*_rectangular(references))]  # sacrebleu wants one list per reference slot
    metric._check_corpus_score_args(list(predictions), streams)
    # corpus_score() is these two calls; the statistics are kept for resampling, not computed twice
    segment_stats = metric._extract_corpus_statistics(list(predictions), streams)
    result = metric._aggregate_and_compute(segment_stats)

    @functools.cache
    def stats() -> Any:  # as an array only when resampling is asked for
        return np.array(segment_stats)

    def resample(indices: Sequence[int]) -> dict[str, float]:
        return {name: metric._compute_score_from_stats(stats()[list(indices)].sum(0).tolist()).score}

    return MetricResult({name: result.score}, f"{name}:{metric.get_signature()}", resample)


def _rectangular(references: References) -> list[list[str]]:
    counts = {len(r) for r in references}
    if len(counts) != 1:
        from ..errors import InputError

        raise InputError("every example needs the same number of references for BLEU, chrF and TER")
    return [list(r) for r in references]


def bleu(predictions: Sequence[str], references: References) -> MetricResult:
    from sacrebleu.metrics import BLEU

    return _sacrebleu(BLEU(), "bleu", predictions, references)


def chrf(predictions: Sequence[str], references: References) -> MetricResult:
    from sacrebleu.metrics import CHRF

    return _sacrebleu(CHRF(), "chrf", predictions, references)


def ter(predictions: Sequence[str], references: References) -> MetricResult:
    from sacrebleu.metrics import TER

    return _sacrebleu(TER(), "ter", predictions, references)


# --- rouge-score ---------------------------------------------------------------------------

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge(predictions: Sequence[str], references: References, use_stemmer: bool = True) -> MetricResult:
    """Mean F1 of rouge-score's RougeScorer over examples (best over references), x100.
    rougeLsum splits sentences on newlines, as rouge-score does; say so in the signature."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    per_example = []
    for prediction, refs in zip(predictions, references):
        scores = [scorer.score(ref, prediction) for ref in refs]
        per_example.append({t: max(s[t].fmeasure for s in scores) for t in ROUGE_TYPES})
    signature = (f"rouge:types={'+'.join(ROUGE_TYPES)}|f1|stem={'yes' if use_stemmer else 'no'}|tok=default"
                 f"|lsum_split=newline|multi_ref=max|agg=mean|version:{_library_version('rouge-score')}")

    def resample(indices: Sequence[int]) -> dict[str, float]:
        return {t: 100 * sum(per_example[i][t] for i in indices) / len(indices) for t in ROUGE_TYPES}

    return MetricResult(resample(range(len(per_example))), signature, resample)


# --- SQuAD exact match and F1 (the official v1.1 evaluation script's definitions) ----------------

def squad_normalize(text: str) -> str:
    """Lower case, drop punctuation, drop the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_f1_one(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(predictions: Sequence[str], references: References) -> MetricResult:
    """Exact match and F1, each the max over the gold answers, averaged, x100."""
    em = [100.0 * max(squad_normalize(p) == squad_normalize(g) for g in golds) for p, golds in zip(predictions, references)]
    f1 = [100.0 * max(squad_f1_one(p, g) for g in golds) for p, golds in zip(predictions, references)]

    def resample(indices: Sequence[int]) -> dict[str, float]:
        return {"exact_match": sum(em[i] for i in indices) / len(indices),
                "f1": sum(f1[i] for i in indices) / len(indices)}

    return MetricResult(resample(range(len(em))), "squad:v1.1|norm=lower+no_punct+no_articles+ws|multi_ref=max",
                        resample)


# --- classification ------------------------------------------------------------------------------

def classification(predictions: Sequence[str], references: References) -> MetricResult:
    """Accuracy and macro-F1 over the labels seen in references or predictions, x100. A
    resample averages over the labels it contains: a class it happens to miss is absent,
    not a class scored 0."""
    gold = [refs[0] for refs in references]
    labels = sorted(set(gold) | set(predictions))

    def scores(indices: Sequence[int]) -> dict[str, float]:
        pairs = [(predictions[i], gold[i]) for i in indices]
        f1s = []
        for label in labels:
            tp = sum(p == label and g == label for p, g in pairs)
            fp = sum(p == label and g != label for p, g in pairs)
            fn = sum(p != label and g == label for p, g in pairs)
            if tp + fp + fn:
                f1s.append(2 * tp / (2 * tp + fp + fn))
        return {"accuracy": 100 * sum(p == g for p, g in pairs) / len(pairs), "macro_f1": 100 * sum(f1s) / len(f1s)}

    return MetricResult(scores(range(len(gold))), f"classification:labels={'+'.join(labels)}|macro=unweighted",
                        scores)


def confusion(predictions: Sequence[str], gold: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold label -> predicted label -> count."""
    table: dict[str, dict[str, int]] = {}
    for p, g in zip(predictions, gold):
        table.setdefault(g, {}).setdefault(p, 0)
        table[g][p] += 1
    return table


# --- what the core registers ---------------------------------------------------------------------

def core_metrics() -> list[Any]:
    """The ``MetricSpec`` of each metric above, for the core plugin's ``register_metrics``."""
    from ..types import MetricSpec

    return [
        MetricSpec("bleu", "corpus BLEU from sacrebleu (13a tokenizer)", bleu),
        MetricSpec("chrf", "chrF from sacrebleu", chrf),
        MetricSpec("ter", "translation edit rate from sacrebleu", ter, higher_is_better=False),
        MetricSpec("rouge", "ROUGE-1/2/L/Lsum F1 from rouge-score, with stemming", rouge),
        MetricSpec("squad", "SQuAD v1.1 exact match and F1 (max over gold answers)", squad),
        MetricSpec("classification", "accuracy and macro-F1, with a confusion matrix", classification),
    ]
