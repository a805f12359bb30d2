"""The GPU checks of the benchmark suite, as one script for a lent GPU machine (bf16).

    python bench/gpu.py                      # on CUDA: about 3 minutes on an H200
    python bench/gpu.py --device cpu --small # a smoke run of every code path, on CPU

W1  sentiment at batch 256 x 128 tokens: achieved TFLOP/s and share of the GPU's dense
    bf16 peak (--peak-tflops, 990 for an H200), nlpapp and plain.
W5  smollm2 batch-1 decode: eager against --compile (static KV cache + torch.compile, 2.5x);
    nlpapp generation at batch 64 against batch 1 (target 20x).
W6  LoRA against full fine-tuning: step time and peak GPU memory.
W9  transformers' continuous batching (generate_batch) against the padded batch nlpapp serve
    runs, tokens/s on smollm2 (bench/continuous_batching.py): which path serving should take here.
W10 the GPU-only quantizations (int4 through torchao, nf4 and llm-int8 through bitsandbytes):
    each quantized, saved, reloaded and decoding smollm2 at batch 1 against bf16 (tokens/s,
    size on disk), and a few QLoRA steps (train --quantize 4bit). Needs torchao and
    bitsandbytes (pip install 'nlpapp[optimize]' bitsandbytes); a method that fails is a row
    with its error, not the end of the run.
Writes bench/results/gpu-<date>.json and prints a table."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from harness import environment, timed
from nlpapp.api import Runtime, run
from nlpapp.types import LoadOptions
from suite import Suite, encoder_with_head, reuters_bodies

HERE = Path(__file__).parent


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn: Any, device: str, repeats: int) -> float:
    fn()
    sync(device)

    def once() -> None:
        fn()
        sync(device)
    return statistics.median(timed(once) for _ in range(repeats))


def encoder_flops(config: Any, batch: int, tokens: int) -> float:
    """Forward FLOPs of a BERT-style encoder: 2 per multiply-add in the projections and MLP,
    plus the attention scores and weighted sums."""
    hidden, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = layers * 2 * (4 * hidden * hidden + 2 * hidden * inner)
    attention = layers * 2 * 2 * tokens * hidden
    return batch * tokens * (per_token + attention)


def w1_tflops(runtime: Runtime, suite: Suite, device: str, batch: int, tokens: int, peak: float) -> list[dict]:
    folder = encoder_with_head(suite, "classifier")
    model = runtime.models.load(folder)
    body = " ".join(reuters_bodies(suite))
    ids = model.tokenizer(body, add_special_tokens=False)["input_ids"][: tokens - 2]  # -2: [CLS] and [SEP]
    text = model.tokenizer.decode(ids)
    texts = [text] * batch
    assert model.count_tokens([text])[0] == tokens - 2, "each input must be exactly the asked length"
    enc = model.tokenizer(texts, return_tensors="pt", padding=True).to(device)

    def plain() -> None:
        with torch.inference_mode():
            model.hf_model(**enc).logits.argmax(-1).tolist()

    def ours() -> None:
        list(run(runtime, "sentiment", [(str(i), {"text": t}) for i, t in enumerate(texts)], model=folder,
                 batch_size=batch))

    flops = encoder_flops(model.hf_model.config, batch, tokens)
    rows = []
    for name, fn in (("nlpapp", ours), ("plain", plain)):
        seconds = median_time(fn, device, 10)
        rows.append({"workload": "W1", "case": f"sentiment batch {batch} x {tokens} tokens, {name}",
                     "seconds": seconds, "tflops": flops / seconds / 1e12,
                     "share_of_peak": flops / seconds / 1e12 / peak})
    return rows


def w5_decode(runtime: Runtime, device: str, new_tokens: int, compile_model: bool, big_batch: int) -> list[dict]:
    from nlpapp.types import GenerationParams

    model = runtime.models.load("smollm2")  # bf16 on a GPU

    def decode(compile: bool) -> None:
        params = GenerationParams(max_new_tokens=new_tokens, compile=compile, extra={"min_new_tokens": new_tokens})
        model.generate(["Tell me about the sea."], params, chat=False)

    eager = median_time(lambda: decode(False), device, 3)
    rows = [{"workload": "W5", "case": "smollm2 batch-1 decode, eager", "tokens_per_s": new_tokens / eager}]
    if compile_model:  # nlpapp's --compile: static KV cache + the compiled decoding step (timed once warm)
        static = median_time(lambda: decode(True), device, 3)
        rows.append({"workload": "W5", "case": "smollm2 batch-1 decode, --compile (static cache + torch.compile)",
                     "tokens_per_s": new_tokens / static, "speedup_over_eager": eager / static,
                     "target": ">= 2.5", "met": eager / static >= 2.5})
    options = {"max_new_tokens": new_tokens, "repetition_penalty": 1.0}  # as the plain side decodes
    prompts = [{"prompt": p} for p in (reuters_titles() * big_batch)[:big_batch]]
    model_spec = "smollm2"
    one = median_time(lambda: list(run(runtime, "generation", [("0", prompts[0])], model=model_spec,
                                       options=options, batch_size=1)), device, 3)
    many = median_time(lambda: list(run(runtime, "generation", [(str(i), p) for i, p in enumerate(prompts)],
                                        model=model_spec, options=options, batch_size=big_batch)), device, 3)
    speedup = (big_batch / many) / (1 / one)
    rows.append({"workload": "W5", "case": f"nlpapp generation, batch {big_batch} ÷ batch 1 throughput",
                 "value": speedup, "target": ">= 20" if big_batch == 64 else None,
                 "met": speedup >= 20 if big_batch == 64 else None})
    return rows


def reuters_titles() -> list[str]:
    return ["Write a headline about oil prices.", "Summarise the week in markets.", "Describe a merger.",
            "Explain what OPEC does.", "Write one sentence about wheat exports."]


def w6_training(runtime: Runtime, suite: Suite, device: str, steps: int) -> list[dict]:
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.trainer import train

    data = suite.work / "train.jsonl"
    data.write_text("".join(json.dumps({"text": b[:1500], "summary": "Headline"}) + "\n"
                            for b in reuters_bodies(suite)[:32]))
    rows = []
    for full in (False, True):
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        config = TrainConfig(task="summarization", model="smollm2", data=[str(data)], max_steps=steps,
                             output=str(suite.work / f"out-{full}"), batch_size=8, save_every=0, full=full,
                             max_length=384, lr=2e-4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                             holdout=0.0)  # pinned: the speed of the step, without the recipe's held-out decoding
        manifest = train(runtime, config, load_options=LoadOptions(device=device), show_progress=False)
        log = [json.loads(line) for line in (Path(config.output) / "train-log.jsonl").read_text().splitlines()]
        tokens_per_s = statistics.median(r["tokens_per_s"] for r in log if r["kind"] == "train")
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
        rows.append({"workload": "W6", "case": f"{'full' if full else 'LoRA'} fine-tuning, smollm2, batch 8",
                     "tokens_per_s": tokens_per_s, "peak_gib": peak, "steps": manifest["metrics"]["steps"]})
    if rows[0]["peak_gib"] and rows[1]["peak_gib"]:
        ratio = rows[0]["peak_gib"] / rows[1]["peak_gib"]
        rows.append({"workload": "W6", "case": "peak GPU memory, LoRA ÷ full", "value": ratio,
                     "target": "<= 0.7", "met": ratio <= 0.7})
    return rows


def w9_continuous_batching(runtime: Runtime, device: str, small: bool) -> list[dict]:
    from continuous_batching import compare

    model = runtime.models.load("smollm2")
    return compare(model, (8,) if small else (32, 128), 8 if small else 64, 1 if small else 3, lambda: sync(device))


def w10_quantized(runtime: Runtime, device: str, small: bool, work: Path, data: Path) -> list[dict]:
    from nlpapp.optimization.tradeoff import folder_bytes
    from nlpapp.training.config import TrainConfig
    from nlpapp.types import GenerationParams

    params = GenerationParams(max_new_tokens=8 if small else 128)
    prompts = ["Write a short poem about the sea.", "Explain what a transformer model is."]

    def tokens_per_s(spec: str) -> float:
        model = runtime.models.load(spec)
        model.generate(prompts[:1], GenerationParams(max_new_tokens=4))
        sync(device)
        tokens, seconds = 0, 0.0
        for prompt in prompts:
            seconds += timed(lambda: model.generate([prompt], params))
            tokens += params.max_new_tokens
        return tokens / seconds

    rows = [{"workload": "W10", "method": "bfloat16", "tokens_per_s": tokens_per_s("smollm2")}]
    for method in ("int4", "nf4", "llm-int8"):
        try:
            folder = work / f"smollm2-{method}"
            runtime.quantize("smollm2", method, folder, measure=False)
            rows.append({"workload": "W10", "method": method, "tokens_per_s": tokens_per_s(str(folder)),
                         "size_bytes": folder_bytes(str(folder))})
        except Exception as exc:  # one method's failure is a finding, not the end of the run
            rows.append({"workload": "W10", "method": method, "error": f"{type(exc).__name__}: {exc}"[:300]})
    text = work / "qlora.txt"  # raw text for a few language-modelling steps
    austen = data / "austen" / "emma.txt"
    text.write_text(austen.read_text()[:20_000] if austen.is_file() else "\n".join(reuters_titles() * 200))
    try:
        seconds = timed(lambda: runtime.train(TrainConfig(task="text-generation", model="smollm2", data=[str(text)],
                                                          objective="lm", quantize="4bit",
                                                          max_steps=2 if small else 10, output=str(work / "qlora"),
                                                          save_every=0, holdout=0.0)))
        rows.append({"workload": "W10", "method": "QLoRA nf4 train", "seconds": seconds,
                     "peak_gpu_bytes": torch.cuda.max_memory_allocated() if device.startswith("cuda") else None})
    except Exception as exc:
        rows.append({"workload": "W10", "method": "QLoRA nf4 train", "error": f"{type(exc).__name__}: {exc}"[:300]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes: check the code paths, not the GPU")
    parser.add_argument("--no-compile", action="store_true", help="skip the static cache + torch.compile check")
    parser.add_argument("--peak-tflops", type=float, default=990.0, help="dense bf16 peak of the GPU")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --device cpu --small for a smoke run")
    runtime = Runtime.create(LoadOptions(device=args.device))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(runtime, Path(tmp), args.data, rounds=3, quick=args.small)
        rows += w1_tflops(runtime, suite, args.device, 8 if args.small else 256, 128, args.peak_tflops)
        rows += w5_decode(runtime, args.device, 8 if args.small else 128, not args.no_compile,
                          4 if args.small else 64)
        rows += w6_training(runtime, suite, args.device, 2 if args.small else 10)
        rows += w9_continuous_batching(runtime, args.device, args.small)
        rows += w10_quantized(runtime, args.device, args.small, Path(tmp), args.data)
    for row in rows:
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k not in ("workload",)}
        print(row["workload"], json.dumps(shown, ensure_ascii=False), flush=True)
    document = {"date": str(datetime.date.today()), "device": args.device, "small": args.small,
                "environment": environment(), "rows": rows}
    out = HERE / "results" / f"gpu-{document['date']}{'-small' if args.small else ''}.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
