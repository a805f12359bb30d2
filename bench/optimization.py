"""W10: what quantization and pruning buy on the embedded defaults, side by side with the
engines a CPU user would pick instead, in one run.

- smollm2, batch-1 greedy decoding (four chat prompts x 64 new tokens): nlpapp float32,
  bfloat16, int8 and int8-dynamic (torchao; the rest of the model in float32 or bfloat16),
  the nlpapp-llamacpp backend, and
  llama.cpp itself (llama-cpp-python) on the same GGUF file; interleaved rounds, the median
  round of each kept. Quality: headline ROUGE-L on the Reuters articles (all 60: no variant
  was trained on them) and perplexity on held-out Austen text, per variant.
- minilm, sentence embeddings at batch 1 and 32: nlpapp float32, bfloat16, int8-dynamic,
  half the attention heads removed, half the weights zeroed, and ONNX Runtime on the same
  weights (exported by torch.onnx); quality as the mean cosine similarity of each variant's
  embeddings to float32's on 500 Austen sentences.

    python bench/optimization.py            # about 25 minutes on an idle 2-core machine
    python bench/optimization.py --quick    # every path once, small
Needs ../shared/data; llama-cpp-python and onnxruntime (each row is skipped, saying so, without)."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import environment  # noqa: E402

from nlpapp.api import Runtime  # noqa: E402
from nlpapp.types import GenerationParams, LoadOptions  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PROMPTS = ["What is the capital of France?", "Write a short poem about the sea.",
           "Explain what a transformer model is.", "Give three tips for staying healthy."]


def decode_variants(work: Path, quick: bool) -> dict[str, Callable[[], Any]]:
    """name -> a function that decodes PROMPTS once and returns the number of new tokens."""
    variants: dict[str, Any] = {}
    fp32 = Runtime.create(LoadOptions(dtype="float32"))
    params = GenerationParams(max_new_tokens=16 if quick else 64)
    folders = {}
    for method in ("int8", "int8-dynamic"):
        folders[method] = work / f"smollm2-{method}"
        fp32.quantize("smollm2", method, folders[method], measure=False)

    def nlpapp_decoder(runtime: Runtime, spec: str) -> Callable[[], int]:
        model = runtime.models.load(spec)

        def run() -> int:
            return sum(sum(model.count_tokens(model.generate([p], params))) for p in PROMPTS)
        return run

    bf16 = Runtime.create(LoadOptions(dtype="bfloat16"))
    variants["nlpapp float32"] = nlpapp_decoder(fp32, "smollm2")
    variants["nlpapp bfloat16"] = nlpapp_decoder(bf16, "smollm2")
    for method, folder in folders.items():  # the unquantized layers and activations in either dtype
        variants[f"nlpapp {method} + float32"] = nlpapp_decoder(fp32, str(folder))
        variants[f"nlpapp {method} + bfloat16"] = nlpapp_decoder(bf16, str(folder))
    gguf = fp32.registries.models.get("smollm2").locate()
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: the llama.cpp rows are skipped")
        return variants
    llama = llama_cpp.Llama(gguf, n_ctx=2048, n_threads=2, verbose=False)

    def llama_run() -> int:
        tokens = 0
        for prompt in PROMPTS:
            out = llama.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=params.max_new_tokens,
                                               temperature=0.0, top_k=1)
            tokens += out["usage"]["completion_tokens"]
        return tokens
    variants["llama.cpp (llama-cpp-python)"] = llama_run
    if "llamacpp" in fp32.registries.backends:
        variants["nlpapp --backend llamacpp"] = nlpapp_decoder(Runtime.create(LoadOptions(backend="llamacpp")),
                                                               "smollm2")
    return variants


def rounds_of(variants: dict[str, Callable[[], int]], rounds: int) -> dict[str, dict[str, Any]]:
    """Interleaved rounds (every variant once per round); tokens/s of each round, median kept."""
    for run in variants.values():  # warm-up: first-call costs are not decoding speed
        run()
    seen: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            started = time.perf_counter()
            tokens = run()
            seen[name].append(tokens / (time.perf_counter() - started))
    return {name: {"median": round(statistics.median(v), 2), "rounds": [round(x, 2) for x in v]}
            for name, v in seen.items()}


def smollm2_quality(work: Path, quick: bool) -> dict[str, Any]:
    from nlpapp.evaluation.evaluate import evaluate

    articles = [json.loads(line) for name in ("train.jsonl", "dev.jsonl")
                for line in (DATA / "reuters" / name).read_text().splitlines() if line.strip()]
    headlines = work / "headlines.jsonl"
    headlines.write_text("".join(json.dumps({"text": a["body"], "summary": a["title"].lower()}) + "\n"
                                 for a in articles[: 6 if quick else None]))
    austen = work / "austen.txt"  # the last chapters of Persuasion's neighbour: text no variant was tuned on
    text = (DATA / "austen" / "northanger_abbey.txt").read_text()
    austen.write_text(text[-(8_000 if quick else 60_000):])
    results = {}
    for name, load, spec in (("float32", LoadOptions(dtype="float32"), "smollm2"),
                             ("bfloat16", LoadOptions(dtype="bfloat16"), "smollm2"),
                             ("int8 + bfloat16", LoadOptions(dtype="bfloat16"), str(work / "smollm2-int8")),
                             ("int8-dynamic + bfloat16", LoadOptions(dtype="bfloat16"),
                              str(work / "smollm2-int8-dynamic"))):
        runtime = Runtime.create(load)
        rouge = evaluate(runtime, "summarization", str(headlines), model=spec,
                         options={"length": "headline", "max_new_tokens": 24})["scores"]["rougeL"]
        ppl = evaluate(runtime, "text-generation", str(austen), model=spec, metrics=["perplexity"])["scores"]
        results[name] = {"rougeL": {"value": rouge["value"], "ci95": rouge["ci95"]},
                         "perplexity": {k: ppl["perplexity"][k] for k in ("value", "ci95")}}
        print(f"  {name}: ROUGE-L {rouge['value']:.2f} {rouge['ci95']}, perplexity {ppl['perplexity']['value']:.2f}")
    return results


def minilm(work: Path, quick: bool) -> dict[str, Any]:
    import torch

    sentences = [s.strip() for s in (DATA / "austen" / "emma.txt").read_text().replace("\n", " ").split(". ")
                 if 40 < len(s.strip()) < 300][: 64 if quick else 500]
    base = Runtime.create(LoadOptions(dtype="float32"))
    base.quantize("minilm", "int8-dynamic", work / "minilm-int8-dynamic", measure=False)
    base.prune("minilm", 0.5, work / "minilm-heads", structured="heads", measure=False)
    base.prune("minilm", 0.5, work / "minilm-sparse", measure=False)
    models = {"nlpapp float32": base.models.load("minilm"),
              "nlpapp bfloat16": Runtime.create(LoadOptions(dtype="bfloat16")).models.load("minilm"),
              "nlpapp int8-dynamic": base.models.load(str(work / "minilm-int8-dynamic")),
              "nlpapp heads pruned 0.5": base.models.load(str(work / "minilm-heads")),
              "nlpapp 50% weights zeroed": base.models.load(str(work / "minilm-sparse"))}
    runs: dict[str, Callable[[list[str]], Any]] = {name: model.embed for name, model in models.items()}
    reference = torch.tensor(runs["nlpapp float32"](sentences))
    onnx = _onnx_embedder(models["nlpapp float32"], work)
    if onnx is not None:
        runs["ONNX Runtime float32"] = onnx
    out: dict[str, Any] = {}
    for batch in (1, 32):
        chunks = [sentences[i:i + batch] for i in range(0, min(len(sentences), 64 if batch == 1 else 256), batch)]
        timing = rounds_of({name: (lambda run=run: [run(c) for c in chunks] and sum(len(c) for c in chunks))
                            for name, run in runs.items()}, 1 if quick else 3)
        for name, t in timing.items():
            out.setdefault(name, {})[f"texts_per_s_batch{batch}"] = t
    for name, run in runs.items():
        emb = torch.tensor(run(sentences))
        out[name]["cosine_to_float32"] = round(float(torch.nn.functional.cosine_similarity(emb, reference).mean()), 5)
    return out


def _onnx_embedder(model: Any, work: Path) -> Callable[[list[str]], Any] | None:
    try:
        import onnxruntime
        import torch
    except ImportError:
        print("onnxruntime is not installed: the ONNX Runtime row is skipped")
        return None
    path = work / "minilm.onnx"
    example = model.encode(["an example sentence"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    class Hidden(torch.nn.Module):  # plain positional inputs for the TorchScript exporter
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    torch.onnx.export(Hidden(model.hf_model), tuple(example[n] for n in names), str(path), input_names=names,
                      output_names=["last_hidden_state"], dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "length"} for n in names})
    # back to eval mode after tracing: embeddings taken after an export without this differed
    # from the same model's own before it (cosine 0.92), as dropout would make them
    model.hf_model.eval()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed(texts: list[str]) -> list[list[float]]:
        encoded = model.tokenizer(texts, padding=True, truncation=True, return_tensors="np")
        hidden = session.run(None, {n: encoded[n] for n in names})[0]
        mask = encoded["attention_mask"][..., None]
        pooled = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as nlpapp's Encoder.embed
        return (pooled / ((pooled ** 2).sum(1, keepdims=True) ** 0.5)).tolist()
    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="decode,quality,minilm")
    args = parser.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {"workload": "W10", "date": datetime.date.today().isoformat(), "quick": args.quick,
                              "environment": environment()}
    with tempfile.TemporaryDirectory(prefix="nlpapp-w10-") as scratch:
        work = Path(scratch)
        if "decode" in only or "quality" in only:
            variants = decode_variants(work, args.quick)
            if "decode" in only:
                print("smollm2 batch-1 greedy decoding, tokens/s:")
                result["decode"] = rounds_of(variants, 1 if args.quick else 3)
                base = result["decode"]["nlpapp float32"]["median"]
                llama = result["decode"].get("llama.cpp (llama-cpp-python)", {}).get("median")
                for name, t in result["decode"].items():
                    t["vs_float32"] = round(t["median"] / base, 3)
                    t["vs_llama_cpp"] = round(t["median"] / llama, 3) if llama else None
                    print(f"  {name:32} {t['median']:8.1f}  {t['vs_float32']:.2f}x float32"
                          + (f"  {t['vs_llama_cpp']:.2f}x llama.cpp" if llama else ""))
            if "quality" in only:
                print("smollm2 quality (headline ROUGE-L, Austen perplexity):")
                result["quality"] = smollm2_quality(work, args.quick)
        if "minilm" in only:
            result["minilm"] = minilm(work, args.quick)
            print("minilm embeddings:")
            for name, r in result["minilm"].items():
                print(f"  {name:28} batch 1 {r['texts_per_s_batch1']['median']:7.1f}/s  batch 32 "
                      f"{r['texts_per_s_batch32']['median']:7.1f}/s  cosine {r['cosine_to_float32']:.4f}")
    target = Path(__file__).parent / "results" / f"{result['date']}-W10{'-quick' if args.quick else ''}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
