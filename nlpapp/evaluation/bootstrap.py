"""Uncertainty for corpus metrics: percentile bootstrap intervals, and the paired
bootstrap test for the difference between two systems on the same examples
(Koehn 2004; the method sacrebleu's paired significance test uses)."""

from __future__ import annotations

import random
from typing import Callable, Sequence

Resample = Callable[[Sequence[int]], dict[str, float]]


def samples(n: int, rounds: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(n) for _ in range(n)] for _ in range(rounds)]


def intervals(resample: Resample, n: int, rounds: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Score -> (low, high): the percentile interval over ``rounds`` resamples."""
    draws: dict[str, list[float]] = {}
    for indices in samples(n, rounds, seed):
        for name, value in resample(indices).items():
            draws.setdefault(name, []).append(value)
    low_q, high_q = (1 - level) / 2, 1 - (1 - level) / 2
    out = {}
    for name, values in draws.items():
        values.sort()
        out[name] = (values[int(low_q * (len(values) - 1))], values[int(high_q * (len(values) - 1))])
    return out


def paired_p_values(resample_a: Resample, resample_b: Resample, n: int, rounds: int = 1000,
                    seed: int = 0) -> dict[str, float]:
    """For each score, the share of resamples in which the observed winner does not win:
    a one-sided p-value for "the better system is better by chance"."""
    full = range(n)
    observed_a, observed_b = resample_a(full), resample_b(full)
    flips = dict.fromkeys(observed_a, 0)
    for indices in samples(n, rounds, seed):
        a, b = resample_a(indices), resample_b(indices)
        for name in flips:
            sign = observed_a[name] - observed_b[name]
            if (a[name] - b[name]) * sign <= 0:
                flips[name] += 1
    return {name: (count + 1) / (rounds + 1) for name, count in flips.items()}


def paired_difference(resample_a: Resample, resample_b: Resample, name: str, n: int, rounds: int = 1000,
                      seed: int = 0, level: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Score ``name`` of system a minus that of system b on the same ``n`` examples, and
    the percentile interval of that difference over paired resamples (both systems scored
    on the same resampled examples)."""
    full = range(n)
    observed = resample_a(full)[name] - resample_b(full)[name]
    draws = sorted(resample_a(indices)[name] - resample_b(indices)[name] for indices in samples(n, rounds, seed))
    low_q, high_q = (1 - level) / 2, 1 - (1 - level) / 2
    return observed, (draws[int(low_q * (len(draws) - 1))], draws[int(high_q * (len(draws) - 1))])
