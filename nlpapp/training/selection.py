"""Held-out evaluation during training: the score that picks the best checkpoint, and the
verdict of the adapter against the base model it started from.

The model is evaluated before the first step (the base: LoRA starts as a zero update) and
after each epoch, on examples no step trained on, with the task's own metric through the
same prediction path ``nlpapp run`` uses; language modelling is scored by perplexity.
The best evaluation's weights are what the run writes (transformers' Trainer calls this
``load_best_model_at_end`` with ``metric_for_best_model``). The verdict compares the base
evaluation with the best one by the paired bootstrap (Koehn 2004)."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import NlpappError
from ..evaluation import bootstrap

VERDICT_ROUNDS = 1000  # bootstrap resamples of the verdict, as nlpapp eval draws by default
# fewer held-out examples than this cannot show a gain: a bootstrap of 1 or 2 examples has
# an interval of no width, which would call any difference certain
VERDICT_MIN_EXAMPLES = 5


@dataclass
class Evaluation:
    """One held-out evaluation: the scores, and what each example gave (its prediction
    text, or ``[loss sum, target count]`` for perplexity) so the verdict can resample it."""

    step: int
    scores: dict[str, float]
    examples: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "scores": self.scores, "examples": self.examples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evaluation":
        return cls(data["step"], data["scores"], data["examples"])


def held_out_indices(count: int, share: float, seed: int) -> list[int]:
    """The indices, in order, of a seeded random ``share`` of ``count`` items (at least 8, or a
    fifth of fewer than 40; at most 500, which keeps an evaluation short); none of fewer than 5."""
    if share <= 0 or count < 5:
        return []
    size = min(max(round(count * share), min(8, count // 5)), 500)
    return sorted(random.Random(seed).sample(range(count), size))


class TaskScorer:
    """Held-out examples scored with the task's metrics on the predictions of ``model``
    (the model being trained: LoRA layers sit inside it, so it predicts with the current
    weights). ``select_by`` (a score name) must be one of the task's scores."""

    def __init__(self, runtime: Any, task: Any, model: Any, examples: list[tuple[Any, dict[str, str]]],
                 options: Any, batch_size: int, select_by: str | None):
        metrics = runtime.registries.metrics
        self.task, self.model, self.options, self.batch_size = task, model, options, batch_size
        self.one_pass = runtime.one_pass(model)
        self.items = [item for item, _ in examples]
        # a whole record again: some tasks read references with their inputs (a tagger's words)
        self.references = [task.references({**dataclasses.asdict(item), **targets}) for item, targets in examples]
        self.metrics = [metrics.get(name) for name in task.metrics]
        self.language = getattr(options, "target_lang", None)  # for the metrics that take it (BLEU's tokenizer)
        # which metric gives which score: scored once on the references themselves
        self.metric_of = {key: spec for spec in self.metrics
                          for key in self._compute(spec, [r[0] for r in self.references]).scores}
        self.select_by = select_by or next(iter(self.metric_of))
        if self.select_by not in self.metric_of:
            raise NlpappError(f"--select-by {self.select_by}: task {task.name!r} scores "
                              f"{', '.join(self.metric_of)}; pick one of them")
        self.higher_is_better = self.metric_of[self.select_by].higher_is_better
        self.size = len(self.items)

    def evaluate(self, step: int) -> Evaluation:
        from ..runtime.engine import Predictor

        module = self.model.trainable_module()
        was_training = module.training
        module.eval()
        try:
            predictor = Predictor(self.task, self.model, self.options, self.batch_size, one_pass=self.one_pass)
            predictions = [self.task.prediction_text(o) for _, o in predictor.predict(self.items)]
        finally:
            module.train(was_training)
        scores: dict[str, float] = {}
        for spec in self.metrics:
            scores.update(self._compute(spec, predictions).scores)
        return Evaluation(step, scores, predictions)

    def resample(self, evaluation: Evaluation) -> bootstrap.Resample:
        return self._compute(self.metric_of[self.select_by], evaluation.examples).resample

    def _compute(self, spec: Any, predictions: list[str]) -> Any:
        settings = {"language": self.language} if spec.language and self.language else {}
        return spec.compute(predictions, self.references, **settings)


class PerplexityScorer:
    """Held-out blocks of raw text scored by perplexity (lower is better): the exponential
    of the mean loss per target token over all blocks."""

    select_by = "perplexity"
    higher_is_better = False

    def __init__(self, model: Any, head: Any, blocks: list[dict[str, Any]], pad_id: int, device: str):
        self.model, self.head, self.blocks, self.pad_id, self.device = model, head, blocks, pad_id, device
        self.size = len(blocks)

    def evaluate(self, step: int) -> Evaluation:
        from .loop import loss_totals

        was_training = self.model.training
        self.model.eval()
        try:  # block by block: the verdict resamples blocks
            per_block = [list(loss_totals(self.model, [b], self.head, self.pad_id, self.device, 1))
                         for b in self.blocks]
        finally:
            self.model.train(was_training)
        return Evaluation(step, perplexity(per_block, range(len(per_block))), per_block)

    def resample(self, evaluation: Evaluation) -> bootstrap.Resample:
        return lambda indices: perplexity(evaluation.examples, indices)


def perplexity(per_block: Sequence[Sequence[float]], indices: Sequence[int]) -> dict[str, float]:
    loss = sum(per_block[i][0] for i in indices)
    count = sum(per_block[i][1] for i in indices)
    mean = loss / max(count, 1)  # per target token
    return {"perplexity": math.exp(min(mean, 50)), "loss": mean}


def improved(scorer: Any, best: Evaluation | None, result: Evaluation) -> bool:
    """Whether ``result`` beats ``best`` on the scorer's score; on a tie (common on a few
    held-out examples), a lower held-out ``loss`` wins, so a saturated score does not keep
    an undertrained early checkpoint. A non-finite score (NaN perplexity) never wins."""
    key = scorer.select_by
    if isinstance(result.scores.get(key), float) and not math.isfinite(result.scores[key]):
        return False
    if best is None:
        return True
    new, old = result.scores[key], best.scores[key]
    if new == old:
        return result.scores.get("loss", math.inf) < best.scores.get("loss", math.inf)
    return new > old if scorer.higher_is_better else new < old


def verdict(scorer: Any, base: Evaluation, best: Evaluation, rounds: int = VERDICT_ROUNDS,
            seed: int = 0) -> dict[str, Any]:
    """The adapter (``best``) against the base on the same held-out examples: both scores,
    their difference with a 95% paired-bootstrap interval, the paired p-value, and
    ``improved``: true when the whole interval lies on the better side of zero."""
    key = scorer.select_by
    adapter_resample, base_resample = scorer.resample(best), scorer.resample(base)
    difference, (low, high) = bootstrap.paired_difference(adapter_resample, base_resample, key, scorer.size,
                                                          rounds, seed)
    p_value = bootstrap.paired_p_values(adapter_resample, base_resample, scorer.size, rounds, seed)[key]
    return {"score": key, "examples": scorer.size, "base": base.scores[key], "adapter": best.scores[key],
            "difference": difference, "ci95": [low, high], "p_value": p_value, "rounds": rounds,
            "higher_is_better": scorer.higher_is_better, "best_step": best.step,
            "improved": scorer.size >= VERDICT_MIN_EXAMPLES and (low > 0 if scorer.higher_is_better else high < 0)}


def verdict_line(result: dict[str, Any]) -> str:
    """``adapter vs base on 10 held-out examples: rougeL 16.2 → 38.4 (+22.2, 95% [15.0, 29.1],
    p=0.001)``, and a plain sentence when the adapter is not measurably better."""
    low, high = result["ci95"]
    count = result["examples"]
    line = (f"adapter vs base on {count} held-out example{'s' * (count != 1)}: {result['score']} "
            f"{result['base']:.1f} → {result['adapter']:.1f} ({result['difference']:+.1f}, 95% [{low:.1f}, "
            f"{high:.1f}], p={result['p_value']:.3f})")
    if result["improved"]:
        return line
    if result["examples"] < VERDICT_MIN_EXAMPLES:
        return line + f"; too few held-out examples to tell (fewer than {VERDICT_MIN_EXAMPLES})"
    better = result["difference"] > 0 if result["higher_is_better"] else result["difference"] < 0
    if better:
        return line + "; not measurably better than the base: the interval includes 0"
    return line + "; the adapter is NOT better than the base"
