"""Side-by-side timing: nlpapp (A) and a baseline (B) doing the same work on the same model
object and inputs, interleaved in one process (A B A B ...). These machines are noisy —
identical runs can differ several-fold — so the per-round ratio A/B is the figure to
read; absolute times are context. Also the environment every result is recorded with."""

from __future__ import annotations

import gc
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()  # neither side pays for the garbage the other left behind
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def side_by_side(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int = 5, warmup: int = 1) -> dict:
    """Warm both up, then ``rounds`` of (ours, theirs); ratio = our time / their time."""
    for _ in range(warmup):
        ours(), theirs()
    pairs = [(timed(ours), timed(theirs)) for _ in range(rounds)]
    ratios = sorted(a / b for a, b in pairs)
    return {"rounds": rounds, "ours_s": [round(a, 5) for a, _ in pairs], "theirs_s": [round(b, 5) for _, b in pairs],
            "ratio_median": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibration() -> dict[str, float]:
    """A quick matmul rate and memory bandwidth, so results from different machines (or
    moments) can be put side by side."""
    import torch

    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    a @ b
    seconds = min(timed(lambda: a @ b) for _ in range(5))
    big = torch.empty(64 * 1024 * 1024 // 4)  # 64 MiB of float32
    big.copy_(torch.randn_like(big))
    target = torch.empty_like(big)
    copy_s = min(timed(lambda: target.copy_(big)) for _ in range(5))
    return {"matmul_gflops": round(2 * 1024 ** 3 / seconds / 1e9, 2),
            "copy_bandwidth_gb_s": round(2 * big.numel() * 4 / copy_s / 1e9, 2)}  # read + write


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    versions = {}
    for dist in ("nlpapp", "torch", "transformers", "peft", "sacrebleu", "rouge-score"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu_model(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "versions": versions, "calibration": calibration()}
