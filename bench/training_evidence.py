"""Does LoRA training help? Three experiments on the shared real data, before and after.

    python bench/training_evidence.py [--data ../shared/data] [--quick]

1. Reuters headlines: summarization with the default causal LM (smollm2), body -> title;
   ROUGE-L on the dev set before and after LoRA on the train set.
2. Reuters topics, acq vs crude: the default encoder (minilm) zero-shot vs a LoRA-trained
   classifier head; accuracy on dev.
3. Continued pre-training: LoRA with the language-model objective on four Austen novels;
   perplexity on the opening of the fifth, before and after.

Prints a table and writes bench/results/training-evidence-<date>.json."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import tempfile
import time
from pathlib import Path

from nlpapp.api import Runtime, run
from nlpapp.training.config import TrainConfig
from nlpapp.training.trainer import train

HERE = Path(__file__).parent


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def rouge_l(runtime: Runtime, rows: list[dict], adapter: str | None) -> tuple[float, list]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    outs = [o for _, o in run(runtime, "summarization", [(str(i), {"text": r["body"]}) for i, r in enumerate(rows)],
                              model="smollm2", adapter=adapter, options={"length": "headline", "max_new_tokens": 24},
                              batch_size=8)]
    scores = [scorer.score(r["title"], o.summary)["rougeL"].fmeasure for r, o in zip(rows, outs)]
    return 100 * sum(scores) / len(scores), [[r["title"], o.summary] for r, o in zip(rows[:3], outs)]


def mean_loss(model, features: list[dict]) -> float:
    """Mean loss per target token of ``features`` (as the training loop evaluates)."""
    from nlpapp.runtime.heads import CausalLMHead
    from nlpapp.training.loop import loss_totals

    total, count = loss_totals(model.hf_model, features, CausalLMHead(), model.tokenizer.pad_token_id,
                               model.device)
    return total / count


def headline_perplexity(runtime: Runtime, rows: list[dict], adapter: str | None) -> float:
    """How likely the model finds the real headlines, given the same prompt as at inference."""
    from nlpapp.task import TrainingContext
    from nlpapp.head import Head

    model = runtime.models.load("smollm2", adapter=adapter)
    task = runtime.task("summarization")
    ctx = TrainingContext(model, Head.CAUSAL_LM, 384, task.parse_options({"length": "headline"}))
    features = [f for r in rows for f in task.training_features(task.Input(r["body"]), {"summary": r["title"]}, ctx)]
    return math.exp(mean_loss(model, features))


def headlines(runtime: Runtime, data: Path, work: Path, quick: bool) -> dict:
    train_rows, dev_rows = read_jsonl(data / "reuters" / "train.jsonl"), read_jsonl(data / "reuters" / "dev.jsonl")
    before, samples_before = rouge_l(runtime, dev_rows, None)
    ppl_before = headline_perplexity(runtime, dev_rows, None)
    config = TrainConfig(task="summarization", model="smollm2", data=[str(data / "reuters" / "train.jsonl")],
                         output=str(work / "headlines"), epochs=1 if quick else 3, batch_size=4, grad_accum=2,
                         lr=5e-4, max_length=384, save_every=0, options={"length": "headline"},
                         columns={"text": "body", "summary": "title"})
    started = time.perf_counter()
    manifest = train(runtime, config, show_progress=True)
    seconds = time.perf_counter() - started
    after, samples_after = rouge_l(runtime, dev_rows, config.output)
    return {"experiment": "Reuters headlines (smollm2, LoRA)", "metric": "ROUGE-L F1 (dev)", "n_dev": len(dev_rows),
            "before": before, "after": after, "headline_perplexity_before": ppl_before,
            "headline_perplexity_after": headline_perplexity(runtime, dev_rows, config.output),
            "train_examples": len(train_rows), "steps": manifest["metrics"]["steps"],
            "train_seconds": seconds, "samples_before": samples_before, "samples_after": samples_after}


def topic_rows(path: Path) -> list[dict]:
    rows = []
    for r in read_jsonl(path):
        topics = set(r["topics"]) & {"acq", "crude"}
        if len(topics) == 1:
            rows.append({"text": r["title"] + ". " + r["body"], "label": topics.pop()})
    return rows


def topics(runtime: Runtime, data: Path, work: Path, quick: bool) -> dict:
    train_rows, dev_rows = topic_rows(data / "reuters" / "train.jsonl"), topic_rows(data / "reuters" / "dev.jsonl")
    zero_shot_labels = ("acq=a company acquires or merges with another company; takeover bid for shares,"
                        "crude=crude oil prices; oil production; OPEC and petroleum")
    records = [(str(i), {"text": r["text"]}) for i, r in enumerate(dev_rows)]
    zero = [o.label for _, o in run(runtime, "sentiment", records, model="minilm",
                                    options={"labels": zero_shot_labels})]
    config = TrainConfig(task="sentiment", model="minilm", data=[write_jsonl(work / "topics-train.jsonl", train_rows)],
                         output=str(work / "topics"), epochs=3 if quick else 20, batch_size=8, lr=2e-3,
                         max_length=256, save_every=0)
    started = time.perf_counter()
    manifest = train(runtime, config, show_progress=True)
    seconds = time.perf_counter() - started
    trained = [o.label for _, o in run(runtime, "sentiment", records, adapter=config.output)]
    accuracy = lambda labels: sum(a == r["label"] for a, r in zip(labels, dev_rows)) / len(dev_rows)
    return {"experiment": "Reuters topics acq vs crude (minilm)", "metric": "accuracy (dev)", "n_dev": len(dev_rows),
            "before": accuracy(zero), "before_method": "zero-shot label descriptions", "after": accuracy(trained),
            "train_examples": len(train_rows), "steps": manifest["metrics"]["steps"], "train_seconds": seconds,
            "dev_labels": [r["label"] for r in dev_rows], "predicted_after": trained}


def perplexity(runtime: Runtime, adapter: str | None, text_file: Path, block: int) -> float:
    from nlpapp.training.features import lm_blocks

    model = runtime.models.load("smollm2", adapter=adapter)
    return math.exp(mean_loss(model, lm_blocks(model.tokenizer, [text_file.read_text()], block)))


def austen(runtime: Runtime, data: Path, work: Path, quick: bool) -> dict:
    novels = sorted((data / "austen").glob("*.txt"))
    held_out = next(p for p in novels if p.name == "emma.txt")
    train_files = [str(p) for p in novels if p != held_out]
    eval_file = work / "emma-opening.txt"
    eval_file.write_text(held_out.read_text()[: 40_000 if quick else 120_000])
    before = perplexity(runtime, None, eval_file, 256)
    config = TrainConfig(task="generation", model="smollm2", data=train_files, output=str(work / "austen"),
                         objective="lm", max_length=256, batch_size=8, epochs=1, max_steps=10 if quick else 80,
                         lr=5e-4, save_every=0)
    started = time.perf_counter()
    manifest = train(runtime, config, show_progress=True)
    seconds = time.perf_counter() - started
    after = perplexity(runtime, config.output, eval_file, 256)
    return {"experiment": "Austen continued pre-training (smollm2, LoRA, lm objective)",
            "metric": f"perplexity on the first {len(eval_file.read_text()):,} characters of Emma",
            "before": before, "after": after, "train_files": [Path(f).name for f in train_files],
            "steps": manifest["metrics"]["steps"], "train_tokens": manifest["metrics"]["steps"] * 8 * 256,
            "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--quick", action="store_true", help="fewer steps, for a smoke run")
    parser.add_argument("--only", choices=["headlines", "topics", "austen"], action="append")
    parser.add_argument("--write-topics-data", type=Path, metavar="DIR",
                        help="only write topics-train.jsonl and topics-dev.jsonl (for the task file reuters-topics) to DIR")
    args = parser.parse_args()
    if args.write_topics_data:
        args.write_topics_data.mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev"):
            rows = topic_rows(args.data / "reuters" / f"{split}.jsonl")
            print(write_jsonl(args.write_topics_data / f"topics-{split}.jsonl", rows), len(rows), "articles")
        return
    runtime = Runtime.create()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, experiment in (("topics", topics), ("headlines", headlines), ("austen", austen)):
            if args.only and name not in args.only:
                continue
            result = experiment(runtime, args.data, Path(tmp), args.quick)
            results.append(result)
            print(f"{result['experiment']}: {result['metric']} {result['before']:.3f} -> {result['after']:.3f} "
                  f"({result['steps']} steps, {result['train_seconds']:.0f} s)", flush=True)
    suffix = "-quick" if args.quick else ""
    out = HERE / "results" / f"training-evidence-{datetime.date.today()}{suffix}.json"
    if args.only and out.is_file():  # keep the other experiments of the day's file
        rerun = {r["experiment"] for r in results}
        results = [r for r in json.loads(out.read_text()) if r["experiment"] not in rerun] + results
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
