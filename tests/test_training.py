"""LoRA training on tiny local models: features, the loop, adapters, resume, DDP, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nlpapp.errors import NlpappError
from nlpapp.testing import install_plugin
from nlpapp.training import features
from nlpapp.training.config import TrainConfig
from nlpapp.training.trainer import train


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def config(model, data, output, **kw):
    base = dict(task="generation", model=str(model), data=[data], output=str(output), batch_size=4, epochs=2,
                lr=1e-3, lora_dropout=0.0, save_every=0, holdout=0.0,  # held-out selection: test_selection.py
                mixed_precision="no")  # float32 on every machine: some tests compare exact losses
    return TrainConfig(**{**base, **kw})


# --- features ---------------------------------------------------------------------------

def test_instruction_features_mask_the_prompt(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("causal-lm"))
    f = features.causal_lm(tok, "who founded acme?", "jane roe", max_length=64)
    answer = tok("jane roe", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    n_prompt = len(f["input_ids"]) - len(answer)
    assert f["labels"] == [-100] * n_prompt + answer
    assert "assistant" in tok.decode(f["input_ids"][:n_prompt])  # the chat template framed the prompt


def test_an_overlong_prompt_loses_its_beginning_not_the_answer(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("causal-lm"))
    f = features.causal_lm(tok, "the weather " * 100 + "who founded acme?", "jane roe", max_length=32, chat=False)
    assert len(f["input_ids"]) == 32
    assert tok.decode([t for t in f["labels"] if t != -100]).startswith("jane roe")


def test_extractive_qa_labels_point_at_the_answer_in_every_window(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("extractive-qa"))
    context = "the weather is nice today. " * 30 + "acme was founded by jane roe."
    start = context.index("jane roe")
    windows = features.extractive_qa(tok, "who founded acme?", context, start, "jane roe", max_length=64, stride=16)
    assert len(windows) > 2
    with_answer = [w for w in windows if w["start_positions"] > 0]
    assert with_answer, "the answer must fall in some window"
    for w in with_answer:
        assert tok.decode(w["input_ids"][w["start_positions"]:w["end_positions"] + 1]) == "jane roe"
    assert any(w["start_positions"] == 0 for w in windows)  # windows without it point at [CLS]


def test_lm_blocks_cover_the_text(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model("causal-lm"))
    blocks = features.lm_blocks(tok, ["the weather is nice today " * 10, "oil prices fell"], block_size=8)
    assert all(len(b["input_ids"]) <= 8 and b["labels"] == b["input_ids"] for b in blocks)
    total = sum(len(b["input_ids"]) for b in blocks)
    expected = len(tok("the weather is nice today " * 10, add_special_tokens=False)["input_ids"]) + len(
        tok("oil prices fell", add_special_tokens=False)["input_ids"]) + 2
    assert total == expected


def test_causal_loss_on_labelled_positions_only_equals_the_loss_over_all_logits(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nlpapp.head import IGNORE
    from nlpapp.runtime.heads import accepts_logits_to_keep, causal_loss_sum
    from nlpapp.training.loop import collate

    tok = AutoTokenizer.from_pretrained(tiny_model("causal-lm"))
    model = AutoModelForCausalLM.from_pretrained(tiny_model("causal-lm")).eval()
    # ragged prompts, so the rows' answers sit at different positions
    batch = collate([features.causal_lm(tok, "word " * n + "?", f"answer {n}", max_length=64) for n in (1, 9, 20)],
                    tok.pad_token_id)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    every_logit = model(**inputs).logits[:, :-1]
    expected = torch.nn.functional.cross_entropy(every_logit.flatten(0, 1), batch["labels"][:, 1:].flatten(),
                                                 ignore_index=IGNORE, reduction="sum")
    assert torch.allclose(causal_loss_sum(model, inputs, batch["labels"]), expected, rtol=1e-5)
    # and the saving reaches the model through the peft wrapper training uses
    import peft

    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    assert accepts_logits_to_keep(model) and accepts_logits_to_keep(wrapped)


# --- the loop and the adapter -------------------------------------------------------------

def test_training_lowers_the_loss_and_writes_a_standard_peft_adapter(runtime, tiny_model, gen_data, tmp_path):
    out = tmp_path / "adapter"
    manifest = train(runtime, config(tiny_model("causal-lm"), gen_data, out, epochs=12, lr=3e-2), show_progress=False)
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"] - 0.3
    assert manifest["metrics"]["steps"] == 48 and manifest["kind"] == "lora"
    for name in ("adapter_config.json", "adapter_model.safetensors", "nlpapp-adapter.json", "loss-curve.png"):
        assert (out / name).is_file()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model("causal-lm")), out)
    assert any("lora_A" in n for n, _ in plain.named_parameters())
    assert not list(tmp_path.glob(".adapter.checkpoints"))  # removed after success


def test_same_seed_same_result_and_accumulation_equals_a_big_batch(runtime, tiny_model, gen_data, tmp_path):
    a = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "a"), show_progress=False)
    b = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "b"), show_progress=False)
    c = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "c", batch_size=2, grad_accum=2),
              show_progress=False)
    assert a["metrics"]["final_loss"] == b["metrics"]["final_loss"]
    assert c["metrics"]["final_loss"] == pytest.approx(a["metrics"]["final_loss"], abs=1e-5)


def test_bf16_mixed_precision_on_cpu_trains_close_to_float32_and_keeps_float32_weights(runtime, tiny_model,
                                                                                        gen_data, tmp_path):
    from safetensors.torch import load_file

    fp32 = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "a", mixed_precision="no"),
                 show_progress=False)
    bf16 = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "b", mixed_precision="bf16"),
                 show_progress=False)
    a, b = fp32["metrics"]["final_loss"], bf16["metrics"]["final_loss"]
    assert a != b and b == pytest.approx(a, rel=0.02)  # autocast ran (bf16 rounds differently), and agrees
    weights = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert bf16["config"]["mixed_precision"] == "bf16" and fp32["config"]["mixed_precision"] == "no"


def test_auto_mixed_precision_is_bf16_only_where_the_hardware_has_it():
    from nlpapp.training.loop import effective_mixed_precision

    assert effective_mixed_precision("no", "cpu") == "no" and effective_mixed_precision("bf16", "cpu") == "bf16"
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()  # oneDNN's own answer for this CPU
    assert effective_mixed_precision("auto", "cpu") == ("bf16" if native else "no")


def test_classifier_from_an_encoder_keeps_its_head_and_labels(runtime, tiny_model, tmp_path):
    from safetensors.torch import load_file

    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\n" + "".join("i loved this wonderful book,good\nawful boring film,bad\n"
                                                 for _ in range(8)))
    out = tmp_path / "topic"
    cfg = TrainConfig(task="sentiment", model=str(tiny_model("encoder")), data=[str(data)], output=str(out),
                      batch_size=4, epochs=8, lr=5e-3, save_every=0, columns={"text": "review", "label": "stars"},
                      holdout=0.0)
    manifest = train(runtime, cfg, show_progress=False)
    assert manifest["labels"] == ["bad", "good"] and manifest["family"] == "sequence-classification"
    assert any("classifier" in k for k in load_file(out / "adapter_model.safetensors"))
    from nlpapp.api import Runtime, run

    # in float32, as trained: a tiny model's margins are narrower than bfloat16's rounding
    float32 = Runtime.create(dtype="float32")
    results = [o for _, o in run(float32, "sentiment", [("1", {"text": "awful boring film"}),
                                                        ("2", {"text": "i loved this wonderful book"})],
                                 adapter=str(out))]
    assert [o.label for o in results] == ["bad", "good"]


def test_adapters_switch_on_one_resident_base(runtime, tiny_model, gen_data, tmp_path):
    base = str(tiny_model("causal-lm"))
    train(runtime, config(base, gen_data, tmp_path / "a", lr=3e-2, epochs=4), show_progress=False)
    train(runtime, config(base, gen_data, tmp_path / "b", lr=3e-2, epochs=4, seed=7), show_progress=False)
    store = runtime.models
    model_a = store.load(base, adapter=str(tmp_path / "a"))
    logits = lambda: model_a.hf_model(**model_a.tokenizer(["say the number 3"], return_tensors="pt")).logits
    with torch.inference_mode():
        out_a = logits()
        model_b = store.load(base, adapter=str(tmp_path / "b"))
        out_b = logits()
        plain = store.load(base)
        out_plain = logits()
        again_a = store.load(base, adapter=str(tmp_path / "a"))
        out_a2 = logits()
    assert model_a is model_b is plain is again_a  # one base, loaded once
    assert not torch.allclose(out_a, out_b) and not torch.allclose(out_a, out_plain)
    assert torch.allclose(out_a, out_a2)


def test_merge_matches_the_unmerged_model(runtime, tiny_model, gen_data, tmp_path):
    from nlpapp.training.merge import merge

    train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "a", lr=3e-2), show_progress=False)
    report = merge(runtime.models, str(tmp_path / "a"), tmp_path / "merged")
    assert report["max_abs_diff"] < 1e-4
    assert (tmp_path / "merged" / "model.safetensors").is_file()


def test_wrong_base_is_refused(runtime, tiny_model, gen_data, tmp_path):
    from nlpapp.testing import tiny

    train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "a"), show_progress=False)
    other = tiny.build("causal-lm", tmp_path / "other-base", seed=1)
    with pytest.raises(NlpappError, match="a different model"):
        runtime.models.load(str(other), adapter=str(tmp_path / "a"))


def test_continued_pretraining_reports_perplexity(runtime, tiny_model, tmp_path):
    corpus = tmp_path / "novel.txt"
    corpus.write_text("the weather is nice today and the sun is shining. " * 40)
    cfg = TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(corpus)],
                      eval_data=[str(corpus)], output=str(tmp_path / "lm"), objective="lm", max_length=16,
                      batch_size=4, epochs=2, lr=1e-2, save_every=0)
    manifest = train(runtime, cfg, show_progress=False)
    evals = [json.loads(line) for line in (tmp_path / "lm" / "train-log.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    # the base before the first step, then each epoch; the best (lowest) one is kept
    assert [e["step"] for e in evals] == [0, 7, 14]
    assert min(e["eval_perplexity"] for e in evals[1:]) < evals[0]["eval_perplexity"]
    assert manifest["metrics"]["eval_perplexity"] == min(e["eval_perplexity"] for e in evals[1:])
    assert manifest["verdict"]["score"] == "perplexity" and manifest["verdict"]["base"] == evals[0]["eval_perplexity"]


def test_full_fine_tuning_writes_a_model_that_runs(runtime, tiny_model, gen_data, tmp_path):
    manifest = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "full", full=True, epochs=1),
                     show_progress=False)
    assert manifest["kind"] == "full"
    assert (tmp_path / "full" / "model.safetensors").is_file() and (tmp_path / "full" / "tokenizer.json").is_file()
    from nlpapp.api import run

    [(_, out)] = run(runtime, "generation", [("p", {"prompt": "say the number 3"})], adapter=str(tmp_path / "full"),
                     options={"max_new_tokens": 3})
    assert isinstance(out.text, str)


def test_gradient_checkpointing_gives_the_same_result(runtime, tiny_model, gen_data, tmp_path):
    plain = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "a", epochs=1), show_progress=False)
    checkpointed = train(runtime, config(tiny_model("causal-lm"), gen_data, tmp_path / "b", epochs=1,
                                         gradient_checkpointing=True), show_progress=False)
    assert checkpointed["metrics"]["final_loss"] == pytest.approx(plain["metrics"]["final_loss"], abs=1e-5)


OBSERVER = '''
import json, os
from nlpapp import hookimpl

def _log(event, **data):
    with open(os.environ["OBSERVED"], "a") as f:
        f.write(json.dumps({"event": event, **data}) + "\\n")

@hookimpl
def on_train_begin(config, model):
    _log("begin", task=config.task, trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))

@hookimpl
def on_train_step(step, metrics):
    _log("step", step=step, loss=metrics["loss"])

@hookimpl
def on_evaluate(step, metrics):
    _log("evaluate", step=step, eval_loss=metrics["eval_loss"])

@hookimpl
def on_train_end(output, manifest):
    _log("end", output=output, steps=manifest["metrics"]["steps"])
'''


def test_observer_hooks_see_the_whole_run(tiny_model, gen_data, tmp_path, monkeypatch, fake_plugin_site):
    from nlpapp.api import Runtime

    site = tmp_path / "site"
    install_plugin(site, "observer", "observer_plugin", sources={"observer_plugin.py": OBSERVER})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("OBSERVED", str(tmp_path / "events.jsonl"))
    out = tmp_path / "a"
    train(Runtime.create(), config(tiny_model("causal-lm"), gen_data, out, eval_data=[gen_data]), show_progress=False)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "begin" and events[0]["trainable"] > 0
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(1, 9))
    assert [e["step"] for e in events if e["event"] == "evaluate"] == [0, 4, 8]  # the base, then each epoch
    assert events[-1] == {"event": "end", "output": str(out), "steps": 8}


# --- bad input ------------------------------------------------------------------------------

def test_bad_inputs_are_one_line_user_errors(runtime, tiny_model, gen_data, tmp_path):
    model = tiny_model("causal-lm")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(NlpappError, match="no records"):
        train(runtime, config(model, str(empty), tmp_path / "x"), show_progress=False)
    with pytest.raises(NlpappError, match="missing target field 'response'"):
        train(runtime, config(model, write_jsonl(tmp_path / "nt.jsonl", [{"prompt": "a"}]), tmp_path / "x"),
              show_progress=False)
    with pytest.raises(NlpappError, match="matches no file"):
        train(runtime, config(model, str(tmp_path / "*.csv"), tmp_path / "x"), show_progress=False)
    (tmp_path / "exists").mkdir()
    with pytest.raises(NlpappError, match="already exists; pass --overwrite"):
        train(runtime, config(model, gen_data, tmp_path / "exists"), show_progress=False)
    with pytest.raises(NlpappError, match="no checkpoint"):
        train(runtime, config(model, gen_data, tmp_path / "fresh"), resume=True, show_progress=False)
    with pytest.raises(NlpappError, match="fewer than one global batch"):
        train(runtime, config(model, gen_data, tmp_path / "x", batch_size=32), show_progress=False)
    assert not (tmp_path / "x").exists()


def test_labels_not_seen_in_training(runtime, tiny_model, tmp_path):
    train_file = write_jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}])
    dev = write_jsonl(tmp_path / "d.jsonl", [{"text": "c", "label": "neutral"}])
    cfg = TrainConfig(task="sentiment", model=str(tiny_model("encoder")), data=[train_file], eval_data=[dev],
                      output=str(tmp_path / "x"), batch_size=1)
    with pytest.raises(NlpappError, match="labels not seen in training: neutral"):
        train(runtime, cfg, show_progress=False)


# --- kill -9, resume, and two processes -------------------------------------------------------------

SLOW_STEPS = '''
import os, time
from nlpapp import hookimpl

@hookimpl
def on_train_step(step, metrics):
    time.sleep(float(os.environ.get("SLOW_STEP_SECONDS", "0")))
'''


def _train_cmd(model, data, out, *extra):
    return [sys.executable, "-m", "nlpapp", "train", "generation", "-m", str(model), "--data", data, "-o", str(out),
            "--batch-size", "2", "--epochs", "3", "--lr", "1e-2", "--no-progress", "--json", *extra]


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(tiny_model, gen_data, tmp_path, fake_plugin_site):
    site = tmp_path / "site"
    install_plugin(site, "slow-steps", "slow_steps", sources={"slow_steps.py": SLOW_STEPS})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    model = tiny_model("causal-lm")
    # lora dropout on: resuming must restore the random state too
    args = ("--save-every", "4", "--lora-dropout", "0.1")
    whole = subprocess.run(_train_cmd(model, gen_data, tmp_path / "whole", *args), env=env, capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    log = tmp_path / "killed.log"  # a file, not a pipe: a full pipe would stall the run it waits for
    with open(log, "wb") as sink:
        proc = subprocess.Popen(_train_cmd(model, gen_data, out, *args), env={**env, "SLOW_STEP_SECONDS": "0.3"},
                                stdout=sink, stderr=sink)
    checkpoint = tmp_path / ".killed.checkpoints" / "step-0000008"  # after the evaluation of step 6
    deadline = time.time() + 240  # a busy machine: startup, the base evaluation and 8 slow steps
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), log.read_text() if proc.poll() is not None else "no checkpoint appeared"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # an interrupted run leaves no adapter that looks complete
    resumed = subprocess.run(_train_cmd(model, gen_data, out, *args, "--resume"), env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = lambda p: json.loads(p.stdout)["metrics"]["final_loss"]
    assert final(resumed) == pytest.approx(final(whole), abs=1e-6)
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    # 16 examples, 3 held out: 13 make 6 steps of 2 an epoch; no step lost or repeated
    assert [r["step"] for r in log if r["kind"] == "train"] == list(range(1, 19))
    # the held-out evaluations too: the base once, then one per epoch, as in the whole run
    evals = lambda lines: [(r["step"], r["eval_rougeL"], round(r["eval_loss"], 5)) for r in lines
                           if r["kind"] == "eval"]
    whole_log = [json.loads(line) for line in (tmp_path / "whole" / "train-log.jsonl").read_text().splitlines()]
    assert [step for step, _, _ in evals(whole_log)] == [0, 6, 12, 18]
    assert evals(log) == evals(whole_log)
    assert json.loads(resumed.stdout)["verdict"] == json.loads(whole.stdout)["verdict"]


def test_resume_with_other_options_is_refused(tiny_model, gen_data, tmp_path, fake_plugin_site):
    site = tmp_path / "site"
    install_plugin(site, "slow-steps", "slow_steps", sources={"slow_steps.py": SLOW_STEPS})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "SLOW_STEP_SECONDS": "0.3"}
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(tiny_model("causal-lm"), gen_data, out, "--save-every", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # a full pipe would stall it
    deadline = time.time() + 120
    while not list(tmp_path.glob(".run.checkpoints/step-*")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    other = subprocess.run(_train_cmd(tiny_model("causal-lm"), gen_data, out, "--save-every", "2", "--lr", "5e-3",
                                      "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert other.returncode == 1
    assert other.stderr.strip().splitlines()[-1].startswith("nlpapp: error: --resume: the checkpoint")


def test_two_processes_with_gloo_match_one(tiny_model, gen_data, tmp_path, fake_plugin_site):
    """torchrun, 2 CPU processes of batch 2, against 1 process of batch 4: the same global
    batch, so the same result up to float rounding (dropout off: the ranks draw their own masks)."""
    def cmd(out, batch):
        return ["-m", "nlpapp", "train", "generation", "-m", str(tiny_model("causal-lm")), "--data", gen_data,
                "-o", str(tmp_path / out), "--batch-size", batch, "--epochs", "2", "--lr", "1e-3",
                "--lora-dropout", "0", "--mixed-precision", "no", "--no-progress", "--json"]  # float32: exact

    one = subprocess.run([sys.executable, *cmd("one", "4")], capture_output=True, text=True, timeout=300)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *cmd("two", "2")], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    loss = lambda p: json.loads(p.stdout)["metrics"]["final_loss"]
    assert loss(two) == pytest.approx(loss(one), abs=1e-5)
    # 16 examples, 3 held out (both runs pick and measure the same checkpoint): 3 steps an epoch
    assert json.loads(two.stdout)["metrics"]["steps"] == json.loads(one.stdout)["metrics"]["steps"] == 6
    assert json.loads(two.stdout)["verdict"] == json.loads(one.stdout)["verdict"]


def test_group_by_length_batches_similar_lengths_and_keeps_every_example_once(tmp_path):
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.distributed import World
    from nlpapp.runtime.heads import CausalLMHead
    from nlpapp.training.loop import TrainingLoop

    lengths = [(i * 37) % 200 + 1 for i in range(256)]  # ragged, in no order
    features = [{"input_ids": [1] * n} for n in lengths]

    def batches(group: bool) -> list[list[int]]:
        config = TrainConfig(task="generation", model="m", data=["d"], output=str(tmp_path / "o"), batch_size=8,
                             epochs=1, lr=1e-3, group_by_length=group)
        loop = TrainingLoop(config, torch.nn.Linear(2, 2), CausalLMHead(), 0, features, [], World(), "cpu",
                            tmp_path, tmp_path / "log.jsonl")
        return [loop._global_indices(step) for step in range(loop.steps_per_epoch)]

    def padding(bs: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)

    grouped, plain = batches(True), batches(False)
    assert sorted(i for b in grouped for i in b) == list(range(256))
    assert grouped == batches(True)  # the same seed gives the same batches (resume relies on it)
    assert padding(grouped) < padding(plain) / 4
    assert [b[0] for b in grouped] != sorted((b[0] for b in grouped), key=lambda i: -lengths[i])  # batches shuffled


def test_targets_in_capitals_are_warned_about_once(runtime, tiny_model, tmp_path, capsys):
    rows = [{"prompt": f"say the number {i}", "response": f"NUMBER {i} IS HERE"} for i in range(8)]
    data = write_jsonl(tmp_path / "caps.jsonl", rows)
    train(runtime, config(tiny_model("causal-lm"), data, tmp_path / "a", epochs=1), show_progress=False)
    assert capsys.readouterr().err.count("8 of 8 training targets are in capitals") == 1
    data = write_jsonl(tmp_path / "lower.jsonl", [{**r, "response": r["response"].lower()} for r in rows])
    train(runtime, config(tiny_model("causal-lm"), data, tmp_path / "b", epochs=1), show_progress=False)
    assert "in capitals" not in capsys.readouterr().err


def test_a_max_length_beyond_the_models_window_trains_at_the_window(runtime, tiny_model, tmp_path, capsys):
    """256 tokens on an encoder of 128 positions: capped quietly when the recipe's, said once
    when the user's, and trained either way."""
    rows = [{"text": "oil prices rose " * 80, "label": "crude"}, {"text": "acme buys a rival " * 80, "label": "acq"}]
    data = write_jsonl(tmp_path / "long.jsonl", rows * 4)
    window = runtime.models.load(str(tiny_model("encoder"))).max_input_tokens
    said = f"--max-length 256 is longer than {tiny_model('encoder')}'s window of {window} tokens"
    for output, given in (("recipe", {}), ("user", {"max_length": 256})):
        manifest = train(runtime, TrainConfig(task="text-classification", model=str(tiny_model("encoder")),
                                              data=[data], output=str(tmp_path / output), max_steps=1, holdout=0.0,
                                              batch_size=4, **given), show_progress=False)
        assert manifest["config"]["max_length"] == window < 256
        assert capsys.readouterr().err.count(said) == (1 if given else 0)
