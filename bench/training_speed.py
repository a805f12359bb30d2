"""Where a CPU training step goes: seconds per step, tokens per second and peak memory of a
LoRA run of smollm2 (summarization, Reuters body -> title, batch 8 x 512 tokens), with each
setting a library already offers, side by side in one run.

    python bench/training_speed.py [--data ../shared/data] [--steps 4] [--rounds 2]

Each variant is a fresh process (so peak memory is its own: VmHWM) that trains ``--steps``
optimizer steps through ``nlpapp.Runtime.train``; the first step is not timed (allocator and
kernel warm-up). Variants run interleaved, ``--rounds`` times, and the table gives the median
seconds per step, its ratio to the default and the final loss (a mixed-precision variant must
land where float32 does). Prints a table and writes bench/results/training-speed-<date>.json."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

VARIANTS = {  # name -> TrainConfig settings over the common ones
    "default": {},
    "--gradient-checkpointing": {"gradient_checkpointing": True},
    "--mixed-precision bf16": {"mixed_precision": "bf16"},
    "--group-by-length": {"group_by_length": True},
}

CHILD = r"""
import json, sys, time
from nlpapp import Runtime, TrainConfig, hookimpl
settings = json.loads(sys.argv[1])
stamps, losses, tokens = [], [], []
class Clock:
    @hookimpl
    def on_train_step(self, step, metrics):
        stamps.append(time.perf_counter()); losses.append(metrics["loss"]); tokens.append(metrics["tokens_per_s"])
runtime = Runtime.create(extra=[("clock", Clock())])
runtime.train(TrainConfig(**settings), overwrite=True)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
steps = [b - a for a, b in zip(stamps, stamps[1:])]  # from the end of step 1: warm-up not timed
print(json.dumps({"seconds_per_step": steps, "loss": losses, "tokens_per_s": tokens[1:], "peak_rss_mb": peak_kb / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", action="append", choices=list(VARIANTS))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nlpapp-training-speed-"))
    common = {"task": "summarization", "model": "smollm2", "data": [str(args.data / "reuters" / "train.jsonl")],
              "columns": {"text": "body", "summary": "title"}, "options": {"length": "headline"},
              "batch_size": 8, "max_length": 512, "max_steps": args.steps, "holdout": 0.0, "save_every": 0,
              "lr": 1e-3}
    names = args.only or list(VARIANTS)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else reversed(names):  # interleaved: drift hits all alike
            settings = {**common, **VARIANTS[name], "output": str(work / "out")}
            done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{name}: {done.stderr.strip()[-2000:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1} {name}: {statistics.median(runs[name][-1]['seconds_per_step']):.2f} s/step",
                  file=sys.stderr, flush=True)
    rows = []
    for name in names:
        seconds = [s for r in runs[name] for s in r["seconds_per_step"]]
        rows.append({"variant": name, "settings": VARIANTS[name], "seconds_per_step": statistics.median(seconds),
                     "tokens_per_s": statistics.median(t for r in runs[name] for t in r["tokens_per_s"]),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[name]),
                     "final_loss": statistics.mean(r["loss"][-1] for r in runs[name]), "rounds": runs[name]})
    base = next((r for r in rows if r["variant"] == "default"), rows[0])
    print("| variant | s/step | ÷ default | tokens/s | peak RSS (GB) | loss after "
          f"{args.steps} steps |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['seconds_per_step']:.2f} | {r['seconds_per_step'] / base['seconds_per_step']:.2f} "
              f"| {r['tokens_per_s']:.0f} | {r['peak_rss_mb'] / 1024:.2f} | {r['final_loss']:.3f} |")
    out = HERE / "results" / f"training-speed-{datetime.date.today()}.json"
    out.write_text(json.dumps({"setup": {**common, "steps": args.steps, "rounds": args.rounds}, "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
