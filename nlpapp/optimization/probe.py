"""``python -m nlpapp.optimization.probe REQUEST``: measure one model in a process of its own
and print one JSON line (``nlpapp.optimization.tradeoff`` runs it; see there for what is
measured and why in a separate process).

REQUEST is JSON: ``{"model": spec, "options": LoadOptions fields}`` for speed and memory,
plus ``"task"``, ``"data"`` and ``"limit"`` for quality on held-out data."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from ..types import GenerationParams, LoadOptions
from .tradeoff import PROBE_NEW_TOKENS, PROBE_TEXTS, folder_bytes


def measure(request: dict[str, Any]) -> dict[str, Any]:
    from ..api import Runtime
    from ..evaluation.evaluate import evaluate

    runtime = Runtime.create(LoadOptions(**request["options"]))
    if request.get("task"):  # the evaluation itself, without a run record of its own: the optimize run has one
        report = evaluate(runtime, request["task"], request["data"], model=request["model"], limit=request.get("limit"))
        return {"scores": {name: {"value": s["value"], "ci95": s.get("ci95")} for name, s in report["scores"].items()},
                "examples": report["examples"]}
    started = time.perf_counter()
    model = runtime.models.load(request["model"])
    load_seconds = time.perf_counter() - started
    throughput, unit = _speed(model)
    return {"size_bytes": folder_bytes(runtime.models.resolve(request["model"]).path),
            "peak_memory_bytes": _peak_memory(model.device), "load_seconds": round(load_seconds, 3),
            "throughput": throughput, "unit": unit}


def _speed(model: Any) -> tuple[float, str]:
    """Generation: tokens/s of greedy batch-1 decoding of PROBE_NEW_TOKENS tokens per text;
    otherwise texts/s of one text per call (classify or embed, whichever the head does)."""
    from ..head import Head

    if model.head in (Head.CAUSAL_LM, Head.SEQ2SEQ_LM):
        params = GenerationParams(max_new_tokens=PROBE_NEW_TOKENS)
        model.generate([PROBE_TEXTS[0]], GenerationParams(max_new_tokens=4))  # warm-up: first-call costs
        started, tokens = time.perf_counter(), 0
        for text in PROBE_TEXTS:
            tokens += sum(model.count_tokens(model.generate([text], params)))
        return round(tokens / (time.perf_counter() - started), 2), "tokens/s"
    run = model.classify if model.head == Head.SEQUENCE_CLASSIFICATION else model.embed
    run([PROBE_TEXTS[0]])
    started = time.perf_counter()
    for _ in range(5):
        for text in PROBE_TEXTS:
            run([text])
    return round(5 * len(PROBE_TEXTS) / (time.perf_counter() - started), 2), "texts/s"


def _peak_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    # VmHWM is this program's own peak; ru_maxrss would carry over a larger parent's (Linux
    # keeps it across fork and exec), which the optimize command is after loading a model
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
