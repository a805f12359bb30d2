"""Continuous batching on this device: transformers' own (``generate_batch``: paged attention,
requests scheduled token by token) against the padded batch ``nlpapp serve`` runs today
(``generate`` on the whole batch), on smollm2 with the same chat prompts, greedy.

    python bench/continuous_batching.py [--quick]

Each round runs both, interleaved; the row gives generated tokens per second for each and
the ratio (continuous ÷ padded: above 1, continuous batching is faster here). Prompts of
mixed lengths and a mix of output lengths (``max_new_tokens`` per request is not offered by
``generate_batch``, so all ask the same; EOS ends some early) make the case continuous
batching is built for. Writes bench/results/<date>-continuous-batching[-quick].json."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def compare(model: Any, sizes: tuple[int, ...], new_tokens: int, rounds: int, sync: Any = lambda: None
            ) -> list[dict[str, Any]]:
    """Rows of padded ``generate`` against ``generate_batch`` on ``model`` (an nlpapp HF model,
    on whatever device it was loaded on); ``sync`` waits for the device."""
    import torch
    from transformers import GenerationConfig

    from serving import sentences

    hf, tok = model.hf_model, model.tokenizer
    rows = []
    for size in sizes:
        texts = [f"Summarize in one line: {s}" for s in sentences(size)]
        chats = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
                 for t in texts]
        ids = [tok(c, add_special_tokens=False)["input_ids"] for c in chats]
        config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id)

        def padded() -> int:
            encoded = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                out = hf.generate(**encoded, generation_config=config)
            sync()
            generated = out[:, encoded["input_ids"].shape[1]:]
            return int((generated != tok.pad_token_id).sum())

        def continuous() -> int:
            with torch.inference_mode():
                outs = hf.generate_batch(ids, generation_config=config, progress_bar=False)
            sync()
            return sum(len(o.generated_tokens) for o in outs.values())

        padded(), continuous()  # warm-up
        runs: dict[str, list[float]] = {"padded": [], "continuous": []}
        for _ in range(rounds):
            for name, fn in (("padded", padded), ("continuous", continuous)):
                started = time.perf_counter()
                tokens = fn()
                runs[name].append(tokens / (time.perf_counter() - started))
        row = {"workload": "W9", "case": f"smollm2, {size} chat prompts, {new_tokens} new tokens, greedy",
               "padded_tokens_per_s": round(statistics.median(runs["padded"]), 2),
               "continuous_tokens_per_s": round(statistics.median(runs["continuous"]), 2)}
        row["continuous_over_padded"] = round(row["continuous_tokens_per_s"] / row["padded_tokens_per_s"], 3)
        rows.append(row)
        print(f"{row['case']:55} padded {row['padded_tokens_per_s']:7.1f} tok/s  continuous "
              f"{row['continuous_tokens_per_s']:7.1f} tok/s  ratio {row['continuous_over_padded']:.2f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from harness import environment
    from nlpapp.api import Runtime

    rounds, new_tokens = (1, 16) if args.quick else (3, 32)
    rows = compare(Runtime.create().models.load("smollm2"), (8, 32), new_tokens, rounds)
    stamp = datetime.date.today().isoformat()
    out = HERE / "results" / f"{stamp}-continuous-batching{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps({"environment": environment(), "rounds": rounds, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
