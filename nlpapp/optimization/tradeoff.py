"""What an optimization costs and gains: size on disk, peak memory, speed and quality of the
optimized model side by side with the original, measured in one run.

Each model is measured in a process of its own (``python -m nlpapp.optimization.probe``) so
its peak memory is its own: the peak resident set size (Linux ``VmHWM``) of a process that
imports torch, loads the model and runs it, or on a GPU the peak of torch's allocator. Speed
is taken in interleaved rounds (original, optimized, original, ...), the best round of each
kept, since a shared machine only ever slows a round down. Quality is the task's metric on
held-out data with its 95% bootstrap interval (``Runtime.evaluate``), when data is given."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NlpappError
from ..types import LoadOptions

# what the speed probe runs when no held-out data is given: short, varied, in English
PROBE_TEXTS = ("The central bank raised interest rates by half a point on Tuesday.",
               "Write a short poem about the sea.",
               "The film was slow, but the acting made up for it.",
               "Explain what a transformer model is in two sentences.")
PROBE_NEW_TOKENS = 32


@dataclass(frozen=True)
class Measurement:
    """One model's side of the comparison."""

    model: str
    size_bytes: int  # the weights files on disk (0 for a hub id)
    peak_memory_bytes: int
    load_seconds: float
    throughput: float  # in ``unit``, the best of the rounds
    unit: str  # "tokens/s" (generation, batch 1, greedy) or "texts/s" (one text per call)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> {value, ci95}


@dataclass(frozen=True)
class Tradeoff:
    original: Measurement
    optimized: Measurement

    def ratios(self) -> dict[str, float]:
        """optimized / original for size, memory and speed."""
        def ratio(a: float, b: float) -> float:
            return round(b / a, 3) if a else float("nan")

        return {"size": ratio(self.original.size_bytes, self.optimized.size_bytes),
                "peak_memory": ratio(self.original.peak_memory_bytes, self.optimized.peak_memory_bytes),
                "throughput": ratio(self.original.throughput, self.optimized.throughput)}

    def as_dict(self) -> dict[str, Any]:
        return {"original": asdict(self.original), "optimized": asdict(self.optimized), "ratios": self.ratios()}


def folder_bytes(path: str) -> int:
    """Bytes of the weights files in a model folder (``*.safetensors``, ``*.bin``, ``*.gguf``)."""
    folder = Path(path)
    if folder.is_file():
        return folder.stat().st_size
    if not folder.is_dir():
        return 0
    return sum(f.stat().st_size for f in folder.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf"))


def compare(original: str, optimized: str, options: LoadOptions, *, task: str | None = None,
            data: str | None = None, limit: int | None = None, rounds: int = 2) -> Tradeoff:
    """Measure ``original`` and ``optimized`` (model specs) alike: speed in ``rounds``
    interleaved rounds on the probe texts, then quality once each when ``task`` and ``data``
    are given. Raises ``NlpappError`` when a probe process fails (with its last line)."""
    if rounds < 1:
        raise NlpappError(f"rounds must be at least 1, got {rounds}")
    runs: dict[str, list[dict[str, Any]]] = {original: [], optimized: []}
    for _ in range(rounds):
        for spec in (original, optimized):
            runs[spec].append(_probe({"model": spec, "options": asdict(options)}))
    scores = {spec: {} for spec in runs}
    if task and data:
        for spec in (original, optimized):
            scores[spec] = _probe({"model": spec, "options": asdict(options), "task": task, "data": data,
                                   "limit": limit})["scores"]
    measured = []
    for spec, results in runs.items():
        best = max(results, key=lambda r: r["throughput"])
        measured.append(Measurement(spec, best["size_bytes"], max(r["peak_memory_bytes"] for r in results),
                                    min(r["load_seconds"] for r in results), best["throughput"], best["unit"],
                                    scores[spec]))
    return Tradeoff(*measured)


def _probe(request: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "nlpapp.optimization.probe", json.dumps(request)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        last = re.sub(r"^nlpapp\.errors\.\w+: ", "", last)  # an nlpapp error says what it is in words
        raise NlpappError(f"measuring {request['model']} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(tradeoff: Tradeoff) -> list[list[str]]:
    """Rows (with a header) for the CLI: each measure, original, optimized, ratio."""
    a, b = tradeoff.original, tradeoff.optimized
    ratios = tradeoff.ratios()
    rows = [["", "original", "optimized", "change"],
            ["size on disk", _mib(a.size_bytes), _mib(b.size_bytes), f"{ratios['size']:.2f}x"],
            ["peak memory", _mib(a.peak_memory_bytes), _mib(b.peak_memory_bytes), f"{ratios['peak_memory']:.2f}x"],
            [f"speed ({a.unit})", f"{a.throughput:.1f}", f"{b.throughput:.1f}", f"{ratios['throughput']:.2f}x"]]
    for name in a.scores:
        before, after = a.scores[name], b.scores.get(name, {})
        rows.append([name, _score(before), _score(after), f"{after.get('value', 0) - before['value']:+.2f}"])
    return rows


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _score(score: dict[str, Any]) -> str:
    if not score:
        return "-"
    ci = score.get("ci95")
    return f"{score['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
