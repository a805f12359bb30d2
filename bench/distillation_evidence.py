"""Does sequence-level distillation make the student translate like the teacher? qwen-coder
(the teacher) -> smollm2 (the student), English -> French, on English sentences from the
shared Reuters articles.

    python bench/distillation_evidence.py [--data ../shared/data] [--train 80] [--held-out 40] [--quick]

1. The Reuters train and dev bodies are split into sentences (40-200 characters, no
   duplicates), shuffled with ``--seed`` and cut into training inputs and a held-out set.
2. ``nlpapp train translation --model smollm2 --teacher qwen-coder --data english.txt
   --target-lang fr``: the vocabularies differ, so the teacher writes the French for the
   training inputs (sequence-level, Kim & Rush 2016; they are in teacher-targets.jsonl in
   the adapter folder) and the student trains on them with the translation recipe.
3. There are no French references here, so held-out quality is agreement with the teacher:
   chrF (sacrebleu) of each system's output against the teacher's output on the held-out
   inputs, with a percentile bootstrap 95% interval (1000 resamples), for the student before
   and after distillation, and their paired difference (Koehn 2004). The teacher itself
   scores 100 by construction; this measures imitation, not translation quality.

Defaults are sized for 20-30 minutes on 2 CPU cores: the teacher's decoding of 120 sentences
is most of it (4-19 s a sentence was seen on a shared 2-core machine). ``--quick`` runs
4 + 4 sentences, 32 new tokens and 2 training steps, to see that it works.
Prints a table and writes bench/results/distillation-evidence-<date>.json."""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from nlpapp import Runtime, TrainConfig
from nlpapp.evaluation import bootstrap

HERE = Path(__file__).parent
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def sentences(data: Path, seed: int) -> list[str]:
    """Sentences of the Reuters bodies (train and dev), 40-200 characters, each once, in a
    seeded random order."""
    found: dict[str, None] = {}
    for split in ("train", "dev"):
        for line in (data / "reuters" / f"{split}.jsonl").read_text().splitlines():
            body = json.loads(line).get("body", "") if line.strip() else ""
            for sentence in SENTENCE_END.split(" ".join(body.split())):
                if 40 <= len(sentence) <= 200 and not sentence.isupper():
                    found[sentence] = None
    ordered = sorted(found)
    random.Random(seed).shuffle(ordered)
    return ordered


def chrf_with_interval(runtime: Runtime, outputs: list[str], references: list[str]) -> tuple[dict[str, Any], Any]:
    """chrF of ``outputs`` against ``references`` with its bootstrap interval; and the resampler."""
    metric = runtime.registries.metrics.get("chrf")
    result = metric.compute(outputs, [[r] for r in references])
    low, high = bootstrap.intervals(result.resample, len(outputs))["chrf"]
    return {"value": result.scores["chrf"], "ci95": [low, high]}, result.resample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--teacher", default="qwen-coder")
    parser.add_argument("--student", default="smollm2")
    parser.add_argument("--train", type=int, default=80, help="training inputs (sentences)")
    parser.add_argument("--held-out", type=int, default=40, help="held-out sentences, never trained on")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="most tokens of a translation")
    parser.add_argument("--target-lang", default="fr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 + 4 sentences, 2 steps: does it run?")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nlpapp-distillation-evidence")
    args = parser.parse_args()
    if args.quick:
        args.train, args.held_out, args.max_new_tokens = 4, 4, 32

    pool = sentences(args.data, args.seed)
    if len(pool) < args.train + args.held_out:
        parser.error(f"only {len(pool)} sentences in {args.data / 'reuters'}; lower --train or --held-out")
    train, held = pool[:args.train], pool[args.train:args.train + args.held_out]
    args.work.mkdir(parents=True, exist_ok=True)
    english = args.work / "english.txt"
    english.write_text("\n".join(train) + "\n")
    output = args.work / f"{args.target_lang}-distilled"
    options = {"target_lang": args.target_lang, "max_new_tokens": args.max_new_tokens}

    runtime = Runtime.create()
    quick = {"max_steps": 2, "batch_size": 2, "holdout": 0.0} if args.quick else {}
    config = TrainConfig(task="translation", model=args.student, teacher=args.teacher, data=[str(english)],
                         output=str(output), options=options, **quick)
    started = time.perf_counter()
    result = runtime.train(config, progress=True, overwrite=True)
    train_seconds = time.perf_counter() - started
    manifest = result.manifest

    decode = options
    started = time.perf_counter()
    reference = [o.translation for o in runtime.run("translation", held, model=args.teacher, options=decode)]
    systems = {"student before": {"model": args.student}, "student after distillation": {"adapter": str(output)}}
    outputs = {name: [o.translation for o in runtime.run("translation", held, options=decode, **kw)]
               for name, kw in systems.items()}
    scores, resamplers = {}, {}
    for name, produced in outputs.items():
        scores[name], resamplers[name] = chrf_with_interval(runtime, produced, reference)
    before, after = resamplers["student before"], resamplers["student after distillation"]
    difference, interval = bootstrap.paired_difference(after, before, "chrf", len(held))
    p_value = bootstrap.paired_p_values(after, before, len(held))["chrf"]
    measure_seconds = time.perf_counter() - started

    record = {
        "experiment": "sequence-level distillation", "date": str(datetime.date.today()), "quick": args.quick,
        "teacher": args.teacher, "student": args.student, "target_lang": args.target_lang, "seed": args.seed,
        "train_sentences": len(train), "held_out_sentences": len(held),
        "distillation": manifest.get("distillation"), "steps": manifest["metrics"]["steps"],
        "train_seconds": train_seconds, "measure_seconds": measure_seconds,
        "trainer_verdict": manifest.get("verdict"),
        "chrf_vs_teacher": scores, "difference": difference, "difference_ci95": list(interval), "p_value": p_value,
        "samples": [{"english": e, "teacher": t, "before": b, "after": a} for e, t, b, a in
                    zip(held[:5], reference, outputs["student before"], outputs["student after distillation"])],
        "config": manifest["config"],
    }
    try:
        from harness import environment  # bench/harness.py, beside this script

        record["environment"] = environment()
    except ImportError:
        pass
    print(f"\n{args.student} distilled from {args.teacher} ({len(train)} sentences, {record['steps']} steps, "
          f"{train_seconds / 60:.1f} min); chrF against the teacher on {len(held)} held-out sentences:")
    print("| system | chrF vs teacher | 95% interval |\n|---|---|---|")
    for name, score in scores.items():
        print(f"| {name} | {score['value']:.1f} | [{score['ci95'][0]:.1f}, {score['ci95'][1]:.1f}] |")
    print(f"difference {difference:+.1f}, 95% [{interval[0]:.1f}, {interval[1]:.1f}], p={p_value:.3f}")
    name = f"distillation-evidence-{datetime.date.today()}{'-quick' if args.quick else ''}.json"
    out = HERE / "results" / name
    out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
