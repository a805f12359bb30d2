"""nlpapp against plain transformers code doing the same work, on the same model object
and the same inputs, interleaved in one process (A B A B ...).

    python bench/throughput.py [--rounds 3] [--quick]

For each task on its default model, at batch 1 and batched, it reports items/s for both
and the median of the per-round ratios (nlpapp time / plain time; 1.00 = no framework
cost, above 1 = nlpapp slower). These machines are noisy: the ratio within one run is the
figure to read, absolute times are context. Writes bench/results/throughput-<date>.json."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from nlpapp.api import Runtime, run

HERE = Path(__file__).parent


def sample(task: str):
    """The small hand-written sample dataset a task plugin ships (e.g. ``qa-sample``)."""
    from nlpapp.datasets import packaged_jsonl

    return packaged_jsonl(f"nlpapp_{task}", "data/sample.jsonl")()
SENTENCES = [r["text"] for r in sample("sentiment")]


def plain_generate(model, prompts: list[str], max_new_tokens: int) -> list[str]:
    """What a user writes with transformers alone: chat template, left padding, greedy."""
    tok, hf = model.tokenizer, model.hf_model
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = hf.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def plain_sentiment(model, texts: list[str], centroids: torch.Tensor) -> list[int]:
    tok, hf = model.tokenizer, model.hf_model
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True)
    with torch.inference_mode():
        hidden = hf(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    return (pooled @ centroids.T).argmax(-1).tolist()


def workloads(runtime: Runtime, quick: bool):
    """(task, model, nlpapp records, options, plain function over a batch of records)."""
    from nlpapp_qa import PROMPT as QA_PROMPT
    from nlpapp_sentiment import LABEL_DESCRIPTIONS
    from nlpapp_summarization import LENGTHS, PROMPT as SUM_PROMPT
    from nlpapp_translation import PROMPT as MT_PROMPT

    minilm = runtime.models.load("minilm")
    centroids = torch.nn.functional.normalize(torch.stack([
        torch.tensor(minilm.embed(s)).mean(0) for s in LABEL_DESCRIPTIONS.values()]), dim=-1)
    n_small = 4 if quick else 8
    sentences = SENTENCES * (1 if quick else 4)
    articles = [s * 3 for s in SENTENCES[:n_small]]
    qa_rows = list(sample("qa"))[:n_small]
    mt_rows = list(sample("translation"))[:n_small]
    yield ("sentiment", "minilm", [{"text": s} for s in sentences], {},
           lambda m, rs: plain_sentiment(m, [r["text"] for r in rs], centroids), (1, 32))
    yield ("generation", "smollm2", [{"prompt": s} for s in SENTENCES[:n_small]],
           {"max_new_tokens": 24, "repetition_penalty": 1.0},
           lambda m, rs: plain_generate(m, [r["prompt"] for r in rs], 24), (1, 8))
    yield ("summarization", "smollm2", [{"text": a} for a in articles], {"max_new_tokens": 24},
           lambda m, rs: plain_generate(m, [SUM_PROMPT.format(length=LENGTHS["sentence"], text=r["text"])
                                            for r in rs], 24), (1, 8))
    yield ("qa", "qwen-coder", [{"question": r["question"], "context": r["context"]} for r in qa_rows],
           {"max_answer_tokens": 16},
           lambda m, rs: plain_generate(m, [QA_PROMPT.format(context=r["context"], question=r["question"])
                                            for r in rs], 16), (1, 8))
    yield ("translation", "qwen-coder", [{"text": r["text"]} for r in mt_rows],
           {"source_lang": "en", "target_lang": "fr", "max_new_tokens": 24},
           lambda m, rs: plain_generate(m, [MT_PROMPT.format(source="English", target="French", text=r["text"])
                                            for r in rs], 24), (1, 8))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer inputs, for a smoke run")
    args = parser.parse_args()
    runtime = Runtime.create()
    results = []
    for task, model_name, records, options, plain, batch_sizes in workloads(runtime, args.quick):
        model = runtime.models.load(model_name)
        for batch in batch_sizes:
            def ours() -> None:
                list(run(runtime, task, [(str(i), r) for i, r in enumerate(records)], model=model_name,
                         options=options, batch_size=batch))

            def theirs() -> None:
                for start in range(0, len(records), batch):
                    plain(model, records[start:start + batch])

            ours(), theirs()  # warm-up: caches, allocator, lazy imports
            rounds = [(timed(ours), timed(theirs)) for _ in range(args.rounds)]
            ratios = [a / b for a, b in rounds]
            row = {"task": task, "model": model_name, "batch": batch, "items": len(records),
                   "nlpapp_items_per_s": len(records) / statistics.median(a for a, _ in rounds),
                   "plain_items_per_s": len(records) / statistics.median(b for _, b in rounds),
                   "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
            results.append(row)
            print(f"{task:14} {model_name:11} batch {batch:>2}: nlpapp {row['nlpapp_items_per_s']:7.2f}/s  "
                  f"plain {row['plain_items_per_s']:7.2f}/s  ratio {row['ratio_median']:.3f} "
                  f"[{row['ratio_min']:.3f}-{row['ratio_max']:.3f}]", flush=True)
    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": cpu_model(),
           "python": platform.python_version(), "rounds": args.rounds}
    import transformers

    env["transformers"] = transformers.__version__
    out = HERE / "results" / f"throughput-{datetime.date.today()}.json"
    out.write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
