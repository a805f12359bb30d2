"""The benchmark suite: each workload runs nlpapp and a plain-library baseline on the same
model object and inputs, interleaved in one process, and reports the median of the
per-round time ratios (nlpapp ÷ baseline: 1.00 is no framework cost, below 1 is faster).

    python bench/suite.py [--quick] [--only W1,W7] [--rounds 5] [--data ../shared/data]

Writes bench/results/<date>.json (the environment, with a matmul and bandwidth
calibration, and every row; a --quick or --only run adds a suffix) and, for a full run,
rewrites the generated part of docs/benchmarks.md.
Models other than the embedded defaults are built here with random weights (same shapes
as the named models), so the suite runs offline; speed does not depend on the weights."""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from harness import environment, side_by_side, timed
from nlpapp.api import Runtime, run

HERE = Path(__file__).parent
DOCS = HERE.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"


class Suite:
    def __init__(self, runtime: Runtime, work: Path, data: Path, rounds: int, quick: bool):
        self.runtime, self.work, self.data, self.rounds, self.quick = runtime, work, data, rounds, quick
        self.rows: list[dict[str, Any]] = []

    def row(self, workload: str, case: str, result: dict[str, Any], target: float | None = None,
            **extra: Any) -> None:
        """One result; ``target`` is the most the ratio may be (None: reported only)."""
        row = {"workload": workload, "case": case, **result, **extra}
        if target is not None:
            row["target"] = f"<= {target}"
            row["met"] = result["ratio_median"] <= target
        self.rows.append(row)
        met = "" if target is None else ("  target met" if row["met"] else f"  target {target} missed")
        print(f"{workload:3} {case:58} ratio {result['ratio_median']:.3f} "
              f"[{result['ratio_min']:.3f}-{result['ratio_max']:.3f}]{met}", flush=True)

    def fact(self, workload: str, case: str, value: float, unit: str, target: str | None = None,
             met: bool | None = None, **extra: Any) -> None:
        """A measured figure that is not a side-by-side ratio (start-up time, a speed-up)."""
        self.rows.append({"workload": workload, "case": case, "value": value, "unit": unit,
                          **({"target": target, "met": met} if target else {}), **extra})
        shown = "" if target is None else (f"  target {target} met" if met else f"  target {target} missed")
        print(f"{workload:3} {case:58} {value:.4g} {unit}{shown}", flush=True)

    def records(self, rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        return [(str(i), r) for i, r in enumerate(rows)]

    def nlpapp(self, task: str, rows: list[dict[str, Any]], model: str, batch: int, **options: Any
               ) -> Callable[[], Any]:
        return lambda: list(run(self.runtime, task, self.records(rows), model=model, options=options,
                                batch_size=batch))


# --- models with random weights, the shapes of the named ones ------------------------------

def encoder_with_head(suite: Suite, head: str) -> str:
    """all-MiniLM-L6-v2 (the embedded minilm) with a classification or QA head."""
    import transformers as tf

    folder = suite.work / f"minilm-{head}"
    if not folder.exists():
        source = suite.runtime.models.resolve("minilm").path
        cls = {"classifier": tf.AutoModelForSequenceClassification, "qa": tf.AutoModelForQuestionAnswering}[head]
        torch.manual_seed(0)
        model = cls.from_pretrained(source, num_labels=2) if head == "classifier" else cls.from_pretrained(source)
        model.save_pretrained(folder)
        tf.AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return str(folder)


def t5_small(suite: Suite) -> str:
    import transformers as tf

    from nlpapp.testing.tiny import build_tokenizer

    folder = suite.work / "t5-small-random"
    if not folder.exists():
        tokenizer = build_tokenizer("t5")
        torch.manual_seed(0)
        config = tf.T5Config(vocab_size=len(tokenizer), d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                             decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        tf.T5ForConditionalGeneration(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def gpt2_sized(suite: Suite) -> str:
    """GPT-2 small's shape (12 layers, 768 wide) with SmolLM2's tokenizer and chat template."""
    import transformers as tf

    folder = suite.work / "gpt2-sized-random"
    if not folder.exists():
        tokenizer = tf.AutoTokenizer.from_pretrained(suite.runtime.models.resolve("smollm2").path)
        torch.manual_seed(0)
        config = tf.GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        tf.GPT2LMHeadModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


# --- inputs ---------------------------------------------------------------------------------

def sentences(n: int) -> list[str]:
    from nlpapp.datasets import packaged_jsonl

    base = [r["text"] for r in packaged_jsonl("nlpapp_sentiment", "data/sample.jsonl")()]
    return [base[i % len(base)] for i in range(n)]


def reuters_bodies(suite: Suite) -> list[str]:
    rows = []
    for split in ("train", "dev"):
        path = suite.data / "reuters" / f"{split}.jsonl"
        rows += [json.loads(line)["body"] for line in path.read_text().splitlines() if line.strip()]
    return rows


# --- plain baselines --------------------------------------------------------------------------

def plain_classify(model: Any, texts: list[str], batch: int) -> list[int]:
    tok, hf = model.tokenizer, model.hf_model
    labels = []
    for start in range(0, len(texts), batch):
        enc = tok(texts[start:start + batch], return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            labels += hf(**enc).logits.argmax(-1).tolist()
    return labels


def plain_generate(model: Any, prompts: list[str], batch: int, max_new_tokens: int, chat: bool = True) -> list[str]:
    """What a user writes with transformers alone: chat template (causal), left padding, greedy."""
    tok, hf = model.tokenizer, model.hf_model
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts] if chat else prompts
    outputs = []
    for start in range(0, len(texts), batch):
        enc = tok(texts[start:start + batch], return_tensors="pt", padding=True, add_special_tokens=not chat)
        with torch.inference_mode():
            out = hf.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        keep = out[:, enc["input_ids"].shape[1]:] if hf.config.is_encoder_decoder is False else out
        outputs += tok.batch_decode(keep, skip_special_tokens=True)
    return outputs


def plain_extractive_qa(model: Any, rows: list[dict[str, str]], batch: int, max_answer: int = 30) -> list[str]:
    """The usual hand-written decoding: windows with stride, top-20 starts x top-20 ends."""
    tok, hf = model.tokenizer, model.hf_model
    answers = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        enc = tok([r["question"] for r in chunk], [r["context"] for r in chunk], truncation="only_second",
                  max_length=384, stride=128, return_overflowing_tokens=True, return_offsets_mapping=True,
                  padding=True, return_tensors="pt")
        windows = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        with torch.inference_mode():
            out = hf(**enc)
        best: dict[int, tuple[float, int, int]] = {}
        for w, sample in enumerate(windows):
            sequence = enc.sequence_ids(w)
            starts = out.start_logits[w].topk(20).indices.tolist()
            ends = out.end_logits[w].topk(20).indices.tolist()
            for s in starts:
                for e in ends:
                    if sequence[s] != 1 or sequence[e] != 1 or e < s or e - s + 1 > max_answer:
                        continue
                    score = float(out.start_logits[w][s] + out.end_logits[w][e])
                    if sample not in best or score > best[sample][0]:
                        best[sample] = (score, offsets[w][s][0], offsets[w][e][1])
        answers += [chunk[i]["context"][best[i][1]:best[i][2]] if i in best else "" for i in range(len(chunk))]
    return answers


# --- the workloads ------------------------------------------------------------------------------

def w1_sentiment(suite: Suite) -> None:
    import transformers as tf

    folder = encoder_with_head(suite, "classifier")
    model = suite.runtime.models.load(folder)
    texts = sentences(64 if suite.quick else 256)
    rows = [{"text": t} for t in texts]
    pipe = tf.pipeline("text-classification", model=model.hf_model, tokenizer=model.tokenizer, device=-1)
    for batch, target in ((1, 1.03), (32, 1.02)):
        ours = suite.nlpapp("sentiment", rows, folder, batch)
        suite.row("W1", f"sentiment, {len(texts)} short inputs, batch {batch} vs tokenizer+model",
                  side_by_side(ours, lambda: plain_classify(model, texts, batch), suite.rounds), target)
        suite.row("W1", f"sentiment, batch {batch} vs pipeline('text-classification')",
                  side_by_side(ours, lambda: pipe(texts, batch_size=batch, truncation=True), suite.rounds))


def w2_ragged(suite: Suite) -> None:
    folder = encoder_with_head(suite, "classifier")
    model = suite.runtime.models.load(folder)
    bodies = reuters_bodies(suite) * (1 if suite.quick else 4)  # 240 inputs: batches to sort into
    lengths = model.count_tokens(bodies)
    mean_chars = int(statistics.mean(len(b) for b in bodies))
    uniform = [(bodies[0] * 20)[:mean_chars] for _ in bodies]  # same count, same total size, one length
    ours_ragged = suite.nlpapp("sentiment", [{"text": b} for b in bodies], folder, 32)
    ours_uniform = suite.nlpapp("sentiment", [{"text": u} for u in uniform], folder, 32)
    suite.row("W2", f"ragged Reuters bodies ({len(bodies)}, {min(lengths)}-{max(lengths)} tokens), batch 32, "
              "vs unsorted batches", side_by_side(ours_ragged, lambda: plain_classify(model, bodies, 32), suite.rounds),
              target=round(1 / 1.5, 3), goal="nlpapp >= 1.5x faster than unsorted")
    # throughput in tokens the model reads (after truncation to its window), so that the
    # two sets count the same way although their lengths differ
    window = model.max_input_tokens or 512
    ragged_tokens = sum(min(n, window) for n in lengths)
    uniform_tokens = sum(min(n, window) for n in model.count_tokens(uniform))
    timing = side_by_side(ours_ragged, ours_uniform, suite.rounds)
    ragged_rate = ragged_tokens / statistics.median(timing["ours_s"])
    ratio = ragged_rate / (uniform_tokens / statistics.median(timing["theirs_s"]))
    suite.fact("W2", "ragged ÷ uniform inputs: tokens/s (nlpapp both, batch 32)", ratio, "x", target=">= 0.9",
               met=ratio >= 0.9, ragged_tokens=ragged_tokens, uniform_tokens=uniform_tokens, timing=timing)
    huge = [" ".join(bodies) * 3 for _ in range(8)]  # about 1 MB each: cut to the model's window
    suite.row("W2", f"8 inputs of {len(huge[0]) / 1e6:.1f} MB each, batch 8, vs tokenizer(truncation=True)+model",
              side_by_side(suite.nlpapp("sentiment", [{"text": h} for h in huge], folder, 8),
                           lambda: plain_classify(model, huge, 8), suite.rounds))


def w3_qa(suite: Suite) -> None:
    folder = encoder_with_head(suite, "qa")
    model = suite.runtime.models.load(folder)
    bodies = [b for b in reuters_bodies(suite) if len(b) > 1500][: 8 if suite.quick else 24]
    rows = [{"question": "What did the company say?", "context": b} for b in bodies]
    for batch, target in ((1, 1.03), (8, 1.02)):
        ours = suite.nlpapp("qa", rows, folder, batch, max_answer_tokens=30, stride=128)
        suite.row("W3", f"extractive QA, {len(rows)} long contexts (384-token windows, stride), batch {batch}",
                  side_by_side(ours, lambda: plain_extractive_qa(model, rows, batch), suite.rounds), target)


def w4_seq2seq(suite: Suite) -> None:
    folder = t5_small(suite)
    model = suite.runtime.models.load(folder)
    texts = sentences(8 if suite.quick else 16)
    for task, prompt, options in (("summarization", "summarize: {}", {"max_new_tokens": 24}),
                                  ("translation", "translate English to French: {}",
                                   {"max_new_tokens": 24, "source_lang": "en", "target_lang": "fr"})):
        prompts = [prompt.format(t) for t in texts]
        for batch, target in ((1, 1.03), (8, 1.02)):
            ours = suite.nlpapp(task, [{"text": t} for t in texts], folder, batch, **options)
            suite.row("W4", f"{task}, t5-small shape, {len(texts)} inputs, batch {batch} vs model.generate",
                      side_by_side(ours, lambda: plain_generate(model, prompts, batch, 24, chat=False), suite.rounds),
                      target)


def w5_generation(suite: Suite) -> None:
    import transformers as tf

    prompts = sentences(32)
    for name in ("smollm2", gpt2_sized(suite)):
        label = "smollm2" if name == "smollm2" else "gpt2-sized"
        model = suite.runtime.models.load(name)
        batches = (1, 8) if suite.quick else (1, 8, 32)
        items_per_s = {}
        for batch in batches:
            chosen = prompts[: max(batch, 4)]
            # the plain side decodes without a repetition penalty; the task's default is 1.2
            ours = suite.nlpapp("generation", [{"prompt": p} for p in chosen], name, batch, max_new_tokens=32,
                                repetition_penalty=1.0)
            result = side_by_side(ours, lambda: plain_generate(model, chosen, batch, 32), suite.rounds)
            items_per_s[batch] = len(chosen) / statistics.median(result["ours_s"])
            suite.row("W5", f"generation, {label}, {len(chosen)} prompts, batch {batch} vs model.generate", result,
                      1.03 if batch == 1 else 1.02)
        pipe = tf.pipeline("text-generation", model=model.hf_model, tokenizer=model.tokenizer, device=-1)
        chosen = prompts[:8]
        messages = [[{"role": "user", "content": p}] for p in chosen]
        suite.row("W5", f"generation, {label}, batch 8 vs pipeline('text-generation')",
                  side_by_side(suite.nlpapp("generation", [{"prompt": p} for p in chosen], name, 8, max_new_tokens=32,
                                            repetition_penalty=1.0),
                               lambda: pipe(messages, batch_size=8, max_new_tokens=32, do_sample=False),
                               suite.rounds))
        largest = max(batches)
        suite.fact("W5", f"generation, {label}: batch {largest} ÷ batch 1 throughput",
                   items_per_s[largest] / items_per_s[1], "x", target=">= 6" if largest == 32 else None,
                   met=items_per_s[largest] / items_per_s[1] >= 6 if largest == 32 else None)
        if name == "smollm2":
            streamed: list[str] = []
            single = [{"prompt": prompts[0]}]
            streaming = lambda: list(run(suite.runtime, "generation", suite.records(single), model=name,
                                         options={"max_new_tokens": 32, "repetition_penalty": 1.0},
                                         stream=streamed.append))
            suite.row("W5", "generation, smollm2, one prompt streamed vs model.generate",
                      side_by_side(streaming, lambda: plain_generate(model, [prompts[0]], 1, 32), suite.rounds))
            roofline(suite, model)


def roofline(suite: Suite, model: Any) -> None:
    """Batch-1 decode against the memory-bandwidth bound: each new token reads every weight once."""
    from harness import calibration

    from nlpapp.types import GenerationParams

    tok, hf = model.tokenizer, model.hf_model
    enc = tok(["Tell me about the sea."], return_tensors="pt")

    def plain(n: int) -> None:
        with torch.inference_mode():
            hf.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)

    def compiled(n: int) -> None:  # nlpapp's --compile
        model.generate(["Tell me about the sea."], GenerationParams(max_new_tokens=n, compile=True,
                                                                  extra={"min_new_tokens": n}), chat=False)

    def per_token(generate: Callable[[int], None]) -> float:
        generate(1), generate(65)  # warm (and compile, once per cache length)
        return (statistics.median(timed(lambda: generate(65)) for _ in range(3))
                - statistics.median(timed(lambda: generate(1)) for _ in range(3))) / 64

    weight_bytes = sum(p.numel() * p.element_size() for p in hf.parameters())
    for how, generate in (("", plain), (" with --compile", compiled)):
        started = time.perf_counter()
        before = calibration()["copy_bandwidth_gb_s"]
        seconds = per_token(generate)
        # the bandwidth this noisy machine gives moves; the higher of the two readings around
        # the decode makes the bound the harder one to reach
        bandwidth = max(before, calibration()["copy_bandwidth_gb_s"]) * 1e9
        bound = bandwidth / weight_bytes
        suite.fact("W5", f"batch-1 decode{how}, smollm2: share of the memory-bandwidth roofline",
                   (1 / seconds) / bound, "of roofline", target=">= 0.5", met=(1 / seconds) / bound >= 0.5,
                   decode_tokens_per_s=1 / seconds, weight_bytes=weight_bytes, bandwidth_gb_s=bandwidth / 1e9,
                   roofline_tokens_per_s=bound, measured_in_s=time.perf_counter() - started)


def w6_training(suite: Suite) -> None:
    """nlpapp's training loop against a plain peft + torch loop and the transformers Trainer,
    on the same features and starting weights: a causal LM and an encoder classifier."""
    import peft
    import transformers as tf

    from nlpapp.training.features import causal_lm, classification
    from nlpapp.head import Head

    bodies = reuters_bodies(suite)[: 24 if suite.quick else 48]
    causal_tok = suite.runtime.models.load("smollm2").tokenizer
    classifier_folder = encoder_with_head(suite, "classifier")
    classifier_tok = suite.runtime.models.load(classifier_folder).tokenizer

    def lora_copy(family: str) -> Any:
        torch.manual_seed(0)
        if family == Head.CAUSAL_LM:
            hf = tf.AutoModelForCausalLM.from_pretrained(suite.runtime.models.resolve("smollm2").path,
                                                         dtype=torch.float32)
            config = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")
        else:
            hf = tf.AutoModelForSequenceClassification.from_pretrained(classifier_folder)
            config = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"],
                                     task_type="SEQ_CLS")
        return peft.get_peft_model(hf, config)

    cases = [  # ragged examples: each round is one epoch, so every side sees the same data
        ("LoRA training, smollm2", Head.CAUSAL_LM, causal_tok,
         [causal_lm(causal_tok, "Write a headline.", b[:1500], 384) for b in bodies]),
        ("LoRA training, minilm classifier", Head.SEQUENCE_CLASSIFICATION, classifier_tok,
         [classification(classifier_tok, b[:2000], int("oil" in b.lower()), 256) for b in bodies]),
    ]
    for label, family, tok, features in cases:
        steps = len(features) // 8
        tokens = sum(len(f["input_ids"]) for f in features)
        rounds = max(2, suite.rounds - 2)
        suite.row("W6", f"{label}, an epoch of {steps} steps x 8 Reuters examples vs plain peft+torch",
                  side_by_side(nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=False),
                               plain_epoch(lora_copy(family), tok, features), rounds),
                  target=1.0, tokens_per_epoch=tokens)
        suite.row("W6", f"{label}, the same epoch vs transformers Trainer",
                  side_by_side(nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=False),
                               trainer_epoch(suite, lora_copy(family), tok, features), rounds))
        if family == Head.CAUSAL_LM:
            grouped = side_by_side(nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=True),
                                   nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=False),
                                   rounds)
            suite.row("W6", "the same with --group-by-length ÷ without (ragged examples)", grouped,
                      target=round(1 / 1.3, 3), goal=">= 1.3x the padded baseline")
            autocast = side_by_side(
                nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=False, mixed_precision="bf16"),
                nlpapp_epoch(suite, lora_copy(family), family, tok, features, group=False), rounds)
            suite.row("W6", "the same with --mixed-precision bf16 ÷ float32 (auto picks bf16 where the CPU has "
                            "bf16 kernels)", autocast)
    peak_memory(suite)


def nlpapp_epoch(suite: Suite, model: Any, family: Any, tok: Any, features: list[dict], group: bool,
                 mixed_precision: str = "no") -> Callable[[], None]:
    """One epoch of nlpapp's training loop per call (batch 8, AdamW, clipping at 1.0); float32
    unless told, as the plain loops it is compared with."""
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.distributed import World
    from nlpapp.training.loop import TrainingLoop

    config = TrainConfig(task="bench", model="bench", data=["-"], output=str(suite.work / "o"), lr=1e-4,
                         batch_size=8, epochs=1000, save_every=0, group_by_length=group,
                         mixed_precision=mixed_precision)
    loop = TrainingLoop(config, model, suite.runtime.registries.heads.get(family), tok.pad_token_id, features, [],
                        World(), "cpu", suite.work / "ckpt",
                        suite.work / "log.jsonl")
    model.train()

    def epoch() -> None:
        for _ in range(len(features) // 8):
            loop.train_step()
    return epoch


def epoch_order(epoch: int, size: int) -> list[int]:
    """The example order of an epoch in nlpapp's loop with the default seed 0."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(epoch)).tolist()


def plain_epoch(model: Any, tok: Any, features: list[dict]) -> Callable[[], None]:
    """What a user writes: HF's own loss, AdamW, clipping over every parameter; one epoch in
    nlpapp's order."""
    from nlpapp.training.loop import collate

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    done = [0]

    def epoch() -> None:
        order = epoch_order(done[0], len(features))
        done[0] += 1
        for step in range(len(features) // 8):
            batch = collate([features[i] for i in order[step * 8:(step + 1) * 8]], tok.pad_token_id)
            model(**batch).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
    return epoch


def trainer_epoch(suite: Suite, model: Any, tok: Any, features: list[dict]) -> Callable[[], None]:
    """transformers' Trainer, one epoch per call in nlpapp's order (so the batches pad alike),
    with logging, saving and evaluation off."""
    import transformers as tf

    from nlpapp.training.loop import collate

    args = tf.TrainingArguments(output_dir=str(suite.work / "trainer"), per_device_train_batch_size=8,
                                num_train_epochs=1, learning_rate=1e-4, lr_scheduler_type="constant",
                                max_grad_norm=1.0, logging_strategy="no", save_strategy="no", eval_strategy="no",
                                report_to=[], disable_tqdm=True, use_cpu=True, remove_unused_columns=False, seed=0,
                                train_sampling_strategy="sequential", dataloader_drop_last=True)
    trainer = tf.Trainer(model=model, args=args, train_dataset=features,
                         data_collator=lambda chunk: collate(chunk, tok.pad_token_id))
    trainer.remove_callback(tf.trainer_callback.PrinterCallback)  # it prints the run's summary
    done = [0]

    def epoch() -> None:
        trainer.train_dataset = [features[i] for i in epoch_order(done[0], len(features))]
        done[0] += 1
        trainer.train()
    return epoch


PEAK_SCRIPT = """
import json, sys
from nlpapp.api import Runtime
from nlpapp.training.config import TrainConfig
from nlpapp.training.trainer import train
config = TrainConfig(**json.loads(sys.argv[1]))
train(Runtime.create(), config, show_progress=False)
# VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over from fork)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"peak_rss_mb": peak_kb / 1024}))
"""


def peak_memory(suite: Suite) -> None:
    """LoRA against full fine-tuning: peak resident memory of a whole training process, with
    small batches (weights and optimizer state dominate), larger ones (activations do), and
    larger ones with activations recomputed in backward."""
    data = suite.work / "headlines.jsonl"
    data.write_text("".join(json.dumps({"text": b[:800], "summary": "Headline"}) + "\n"
                            for b in reuters_bodies(suite)[:16]))
    for batch, length, checkpointing in ((1, 128, False), (4, 256, False), (4, 256, True)):
        peaks = {}
        for full in (False, True):
            config = {"task": "summarization", "model": "smollm2", "data": [str(data)], "output":
                      str(suite.work / f"peak-{full}-{batch}-{checkpointing}"), "max_steps": 2, "batch_size": batch, "save_every": 0,
                      "full": full, "max_length": length, "gradient_checkpointing": checkpointing,
                      "lr": 2e-4, "holdout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                      "mixed_precision": "no"}  # float32, as the earlier results (bf16: training_speed.py)
            out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, json.dumps(config)], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-2000:])
            peaks["full" if full else "lora"] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        ratio = peaks["lora"] / peaks["full"]
        how = f"batch {batch} x {length} tokens" + (", --gradient-checkpointing" if checkpointing else "")
        suite.fact("W6", f"peak memory of a training process, LoRA ÷ full (smollm2, {how})",
                   ratio, "x", target="<= 0.7", met=ratio <= 0.7, peak_rss_mb=peaks)


def w7_metrics(suite: Suite) -> None:
    import pysbd
    import sacrebleu
    from rouge_score import rouge_scorer

    from nlpapp.evaluation import metrics

    lines = [s for s in (suite.data / "austen").glob("*.txt") for s in s.read_text().split(".")]
    lines = [" ".join(line.split()) for line in lines if len(line.split()) > 5][:1000 if suite.quick else 5000]
    hypotheses = [" ".join(line.split()[::2] + line.split()[1::4]) for line in lines]  # a deterministic paraphrase
    references = [[line] for line in lines]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    segmenter = pysbd.Segmenter(language="en", clean=False)

    def sentences(text: str) -> str:  # what rougeLsum needs, as the common evaluation scripts do it
        return "\n".join(s.strip() for s in segmenter.segment(text) if s.strip())

    def direct_rouge() -> None:  # the same numbers as nlpapp's rouge, from the libraries directly
        scores = [{**scorer.score(r[0], h), **lsum.score(sentences(r[0]), sentences(h))}
                  for h, r in zip(hypotheses, references)]
        statistics.mean(s["rougeL"].fmeasure for s in scores)

    for name, ours, theirs in (
            ("bleu", lambda: metrics.bleu(hypotheses, references), lambda: sacrebleu.corpus_bleu(hypotheses, [lines])),
            ("chrf", lambda: metrics.chrf(hypotheses, references), lambda: sacrebleu.corpus_chrf(hypotheses, [lines])),
            ("rouge", lambda: metrics.rouge(hypotheses, references), direct_rouge)):
        suite.row("W7", f"{name} on {len(lines)} pairs vs the direct library call",
                  side_by_side(ours, theirs, suite.rounds + 4), target=1.1)  # single-threaded, so cheap rounds


def w8_cold_start(suite: Suite) -> None:
    def wall(args: list[str]) -> float:
        return statistics.median(timed(lambda: subprocess.run(args, capture_output=True, check=True))
                                 for _ in range(5))

    for command in (["--help"], ["tasks"]):
        seconds = wall([sys.executable, "-m", "nlpapp", *command])
        suite.fact("W8", f"nlpapp {' '.join(command)}: wall time", seconds, "s", target="<= 0.3", met=seconds <= 0.3)
    loaded = subprocess.run([sys.executable, "-c", "import sys; from nlpapp.cli.main import main; main(['--help']); "
                             "print('torch' in sys.modules)"], capture_output=True, text=True)
    suite.fact("W8", "nlpapp --help imports torch", float(loaded.stdout.strip().endswith("True")), "(1 = yes)",
               target="== 0", met=loaded.stdout.strip().endswith("False"))
    # the load, and how much of it is importing torch and transformers (which nlpapp defers)
    script = ("import time, json; from nlpapp.api import Runtime; r = Runtime.create(); t = time.perf_counter(); "
              "r.models.load('smollm2'); total = time.perf_counter() - t; t = time.perf_counter(); "
              "r2 = Runtime.create(); r2.models.load('smollm2'); print(json.dumps([total, time.perf_counter() - t]))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(3)]
    seconds = statistics.median(total for total, _ in runs)
    again = statistics.median(second for _, second in runs)
    suite.fact("W8", "first load of the cached default smollm2 in a new process", seconds, "s", target="<= 3",
               met=seconds <= 3, second_load_same_process_s=again, libraries_import_s=seconds - again)
    # the same first load, whole processes side by side: nlpapp against transformers on the cached folder
    folder = suite.runtime.models.resolve("smollm2").path
    ours = [sys.executable, "-c", "from nlpapp.api import Runtime; Runtime.create().models.load('smollm2')"]
    theirs = [sys.executable, "-c", f"import transformers as tf; tf.AutoTokenizer.from_pretrained({folder!r}); "
              f"tf.AutoModelForCausalLM.from_pretrained({folder!r})"]
    suite.row("W8", "a new process that loads the cached smollm2 vs one that loads it with plain transformers",
              side_by_side(lambda: subprocess.run(ours, capture_output=True, check=True),
                           lambda: subprocess.run(theirs, capture_output=True, check=True), suite.rounds))


WORKLOADS = {"W1": w1_sentiment, "W2": w2_ragged, "W3": w3_qa, "W4": w4_seq2seq, "W5": w5_generation,
             "W6": w6_training, "W7": w7_metrics, "W8": w8_cold_start}


def markdown(document: dict[str, Any]) -> str:
    env = document["environment"]
    lines = [BEGIN, "", f"Run {document['date']} ({'quick' if document['quick'] else 'full'}, "
             f"{document['rounds']} rounds) on {env['cpu']}, {env['torch_threads']} torch threads, torch "
             f"{env['versions']['torch']}, transformers {env['versions']['transformers']}; calibration "
             f"{env['calibration']['matmul_gflops']} GFLOP/s matmul, {env['calibration']['copy_bandwidth_gb_s']} GB/s "
             f"copy. Ratio = nlpapp time ÷ baseline time, median [min–max] over rounds.", "",
             "| id | case | result | target | met |", "|---|---|---|---|---|"]
    for r in document["rows"]:
        result = (f"{r['ratio_median']:.3f} [{r['ratio_min']:.3f}–{r['ratio_max']:.3f}]" if "ratio_median" in r
                  else f"{r['value']:.3g} {r['unit']}")
        target = r.get("goal") or r.get("target") or "—"
        met = "—" if "met" not in r else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['workload']} | {r['case']} | {result} | {target} | {met} |")
    return "\n".join(lines + ["", END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer inputs and rounds, for a smoke run")
    parser.add_argument("--only", help="comma-separated workload ids, e.g. W1,W7")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload {unknown[0]}; choose from {', '.join(WORKLOADS)}")
    rounds = 3 if args.quick and args.rounds == 5 else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(Runtime.create(), Path(tmp), args.data, rounds, args.quick)
        for workload in chosen:
            WORKLOADS[workload](suite)
    document = {"date": str(datetime.date.today()), "quick": args.quick, "rounds": rounds,
                "environment": environment(), "rows": suite.rows}
    suffix = ("-quick" if args.quick else "") + (f"-{'-'.join(chosen)}" if args.only else "")
    out = HERE / "results" / f"{document['date']}{suffix}.json"  # a partial run never replaces a full one
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    if not args.only and not args.quick:
        text = DOCS.read_text()
        start, end = text.find(BEGIN), text.find(END)
        if start >= 0 and end > start:
            DOCS.write_text(text[:start] + markdown(document) + text[end + len(END):])
            print(f"updated {DOCS}")


if __name__ == "__main__":
    main()
