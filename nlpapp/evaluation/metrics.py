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


# --- the inputs every core metric checks first -------------------------------------------------

def check_inputs(metric: str, predictions: Any, references: Any) -> None:
    """One prediction string and a non-empty list of reference strings per example, as many
    of each, at least one example. Raises ``MetricInputError`` naming the first thing wrong."""
    from ..errors import MetricInputError

    def fail(what: str) -> None:
        raise MetricInputError(f"{metric}: {what}")

    def text(value: Any) -> str:  # the value, described for a message
        return "None" if value is None else f"{type(value).__name__} {value!r:.40}"

    for name, value in (("predictions", predictions), ("references", references)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            fail(f"{name} must be a list, got {text(value)}")
    if len(predictions) != len(references):
        fail(f"{len(predictions)} prediction(s) but {len(references)} list(s) of references; give one list per "
             "prediction")
    if not predictions:
        fail("no examples to score (empty predictions and references)")
    for i, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            fail(f"prediction {i} must be a string, got {text(prediction)}")
    for i, refs in enumerate(references):
        if isinstance(refs, (str, bytes)) or not isinstance(refs, Sequence):
            fail(f"references of example {i} must be a list of strings, got {text(refs)}")
        if not refs:
            fail(f"example {i} has no reference")
        for ref in refs:
            if not isinstance(ref, str):
                fail(f"a reference of example {i} must be a string, got {text(ref)}")


def checked(compute: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
    """``compute`` that runs ``check_inputs`` first."""
    @functools.wraps(compute)
    def run(predictions: Sequence[str], references: References, **settings: Any) -> MetricResult:
        check_inputs(compute.__name__, predictions, references)
        return compute(predictions, references, **settings)

    return run


# --- sacrebleu: BLEU, chrF, TER ------------------------------------------------------------

def _sacrebleu(metric: Any, name: str, predictions: Sequence[str], references: References) -> MetricResult:
    """Corpus score from sacrebleu, and resampling through its sufficient statistics (the
    way sacrebleu's own significance tests do), so a bootstrap sample costs a sum."""
    import numpy as np

    streams = _reference_streams(references)
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


def _reference_streams(references: References) -> list[list[str | None]]:
    """One list per reference slot, as sacrebleu wants; an example with fewer references
    is padded with None, which sacrebleu skips (its signature then says nrefs:var)."""
    slots = max(len(r) for r in references)
    return [[r[i] if i < len(r) else None for r in references] for i in range(slots)]


@checked
def bleu(predictions: Sequence[str], references: References, language: str | None = None) -> MetricResult:
    """``language``: the target language (ISO 639-1); sacrebleu picks the tokenizer from it
    (zh: zh, ja: ja-mecab, ko: ko-mecab, else 13a). Raises ``MetricDependencyError`` when
    that tokenizer needs a package that is not installed."""
    from sacrebleu.metrics import BLEU

    # "zh-CN", "ZH" -> "zh": sacrebleu compares the code as given, and would tokenize Chinese with 13a
    language = language.split("-")[0].split("_")[0].lower() if language else language
    try:
        metric = BLEU(trg_lang=language or "")
    except (ImportError, RuntimeError) as e:  # sacrebleu raises RuntimeError when the ja/ko extras are missing
        if language not in ("ja", "ko"):
            raise
        from ..errors import MetricDependencyError

        raise MetricDependencyError(f"BLEU for target language {language!r} needs sacrebleu's {language} "
                                    f"tokenizer: pip install 'sacrebleu[{language}]'") from e
    return _sacrebleu(metric, "bleu", predictions, references)


@checked
def chrf(predictions: Sequence[str], references: References) -> MetricResult:
    from sacrebleu.metrics import CHRF

    return _sacrebleu(CHRF(), "chrf", predictions, references)


@checked
def ter(predictions: Sequence[str], references: References) -> MetricResult:
    from sacrebleu.metrics import TER

    return _sacrebleu(TER(), "ter", predictions, references)


# --- rouge-score ---------------------------------------------------------------------------

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@checked
def rouge(predictions: Sequence[str], references: References, use_stemmer: bool = True) -> MetricResult:
    """Mean F1 of rouge-score's RougeScorer over examples (best over references), x100.
    Texts are put in Unicode NFC first. Tokenizer: rouge-score's default (stemmed) when
    every reference letter is ASCII, else
    rouge_text.UnicodeTokenizer (no stemming); rougeLsum gets sentences split with pysbd,
    one a line. Warns (UserWarning) when a non-empty text has no tokens; raises ImportError
    without pysbd."""
    import unicodedata

    from rouge_score import rouge_scorer

    from . import rouge_text

    # one normal form: "é" typed as e + a combining accent (macOS, some scrapers) is the same
    # word as the single character; NFC leaves ASCII text as it is
    predictions = [unicodedata.normalize("NFC", p) for p in predictions]
    references = [[unicodedata.normalize("NFC", r) for r in refs] for refs in references]
    tokenizer, tok = rouge_text.choose_tokenizer(references, use_stemmer)
    rouge_text.warn_empty([*predictions, *(r for refs in references for r in refs)], tokenizer, tok)
    stem = use_stemmer and tok == "default"
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES[:3]), tokenizer=tokenizer)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=tokenizer)
    split = rouge_text.split_sentences
    per_example = []
    for prediction, refs in zip(predictions, references):
        scores = [{**scorer.score(ref, prediction), **lsum.score(split(ref), split(prediction))} for ref in refs]
        per_example.append({t: max(s[t].fmeasure for s in scores) for t in ROUGE_TYPES})
    signature = (f"rouge:types={'+'.join(ROUGE_TYPES)}|f1|stem={'yes' if stem else 'no'}|tok={tok}"
                 f"|norm=nfc|lsum_split={rouge_text.splitter_name()}|multi_ref=max|agg=mean"
                 f"|version:{_library_version('rouge-score')}")

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


@checked
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

@checked
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
        MetricSpec("bleu", "corpus BLEU from sacrebleu (tokenizer by target language: 13a, zh, ja-mecab, ko-mecab)",
                   bleu, language=True),
        MetricSpec("chrf", "chrF from sacrebleu", chrf),
        MetricSpec("ter", "translation edit rate from sacrebleu", ter, higher_is_better=False),
        MetricSpec("rouge", "ROUGE-1/2/L/Lsum F1 from rouge-score (stemmed English; Unicode words or characters otherwise; rougeLsum on pysbd sentences)", rouge),
        MetricSpec("squad", "SQuAD v1.1 exact match and F1 (max over gold answers)", squad),
        MetricSpec("classification", "accuracy and macro-F1, with a confusion matrix", classification),
    ]
