"""Measure the embedded default models on each task, to choose and document the defaults.

    python bench/defaults_quality.py [--data ../shared/data]

Samples written for this project ship with the task plugins (nlpapp datasets); the Reuters headline task reads
the shared data folder and is skipped when it is absent. Prints a table and writes
bench/results/defaults-quality-<date>.json with scores, speed and sample outputs."""

from __future__ import annotations

import argparse
import datetime
import json
import re
import time
from pathlib import Path

from nlpapp.api import Runtime, run

HERE = Path(__file__).parent


def sample(task: str):
    """The small hand-written sample dataset a task plugin ships (e.g. ``qa-sample``)."""
    from nlpapp.datasets import packaged_jsonl

    return packaged_jsonl(f"nlpapp_{task}", "data/sample.jsonl")()


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit]


def normalize(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def predict(runtime: Runtime, task: str, model: str, records: list[dict], **options) -> tuple[list, float]:
    started = time.perf_counter()
    outputs = [out for _, out in run(runtime, task, [(str(i), r) for i, r in enumerate(records)],
                                     model=model, options=options, batch_size=8)]
    return outputs, time.perf_counter() - started


def sentiment(runtime: Runtime) -> list[dict]:
    rows = list(sample("sentiment"))
    outs, seconds = predict(runtime, "sentiment", "minilm", [{"text": r["text"]} for r in rows])
    correct = sum(o.label == r["label"] for o, r in zip(outs, rows))
    return [{"task": "sentiment", "model": "minilm", "metric": "accuracy", "n": len(rows),
             "score": correct / len(rows), "items_per_s": len(rows) / seconds,
             "samples": [[r["text"], o.label, round(o.score, 3)] for r, o in zip(rows[:3], outs)]}]


def qa(runtime: Runtime) -> list[dict]:
    rows = list(sample("qa"))
    results = []
    for model in ("smollm2", "qwen-coder"):
        outs, seconds = predict(runtime, "qa", model, [{"question": r["question"], "context": r["context"]}
                                                      for r in rows])
        hits = sum(r["answer"].lower() in o.answer.lower() for o, r in zip(outs, rows))
        exact = sum(normalize(r["answer"]) == normalize(o.answer) for o, r in zip(outs, rows))
        results.append({"task": "qa", "model": model, "metric": "answer contains gold", "n": len(rows),
                        "score": hits / len(rows), "exact_match": exact / len(rows),
                        "items_per_s": len(rows) / seconds,
                        "samples": [[r["question"], o.answer] for r, o in zip(rows[:3], outs)]})
    return results


def translation(runtime: Runtime) -> list[dict]:
    import sacrebleu

    rows = list(sample("translation"))
    results = []
    for model in ("smollm2", "qwen-coder"):
        outs, seconds = predict(runtime, "translation", model, [{"text": r["text"]} for r in rows],
                                source_lang="en", target_lang="fr", max_new_tokens=64)
        hyps, refs = [o.translation for o in outs], [[r["translation"] for r in rows]]
        results.append({"task": "translation en-fr", "model": model, "metric": "chrF / BLEU",
                        "n": len(rows), "score": sacrebleu.corpus_chrf(hyps, refs).score,
                        "bleu": sacrebleu.corpus_bleu(hyps, refs).score, "items_per_s": len(rows) / seconds,
                        "samples": [[r["text"], h] for r, h in zip(rows[:3], hyps)]})
    return results


def headlines(runtime: Runtime, data: Path) -> list[dict]:
    from rouge_score import rouge_scorer

    path = data / "reuters" / "dev.jsonl"
    if not path.is_file():
        print(f"skipping headlines: {path} not found")
        return []
    rows = read_jsonl(path)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    results = []
    for model in ("smollm2", "qwen-coder"):
        outs, seconds = predict(runtime, "summarization", model, [{"text": r["body"]} for r in rows],
                                length="headline", max_new_tokens=32)
        scores = [scorer.score(r["title"], o.summary) for r, o in zip(rows, outs)]
        results.append({"task": "summarization (Reuters headline)", "model": model, "metric": "ROUGE-L F1",
                        "n": len(rows), "score": 100 * sum(s["rougeL"].fmeasure for s in scores) / len(rows),
                        "rouge1": 100 * sum(s["rouge1"].fmeasure for s in scores) / len(rows),
                        "items_per_s": len(rows) / seconds,
                        "samples": [[r["title"], o.summary] for r, o in zip(rows[:3], outs)]})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    runtime = Runtime.create()
    results = sentiment(runtime) + qa(runtime) + translation(runtime) + headlines(runtime, args.data)
    print(f"{'task':34} {'model':11} {'metric':22} {'n':>3} {'score':>7} {'items/s':>8}")
    for r in results:
        extra = {k: round(r[k], 3) for k in ("exact_match", "bleu", "rouge1") if k in r}
        print(f"{r['task']:34} {r['model']:11} {r['metric']:22} {r['n']:>3} {r['score']:>7.3f} "
              f"{r['items_per_s']:>8.2f}  {extra or ''}")
    out = HERE / "results" / f"defaults-quality-{datetime.date.today()}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
