"""Training never writes a broken artefact and survives interruption: a planted pickle in a
checkpoint never runs, a diverging run stops before writing NaN weights, SIGINT/SIGTERM
checkpoint and resume exactly, resume refuses changed options, data or base weights by name,
and running out of memory or disk is one line that leaves the old output alone."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from nlpapp.errors import NlpappError, TrainingError, TrainingInterrupted
from nlpapp.training.config import TrainConfig
from nlpapp.training.trainer import train

# one test plugin, each behaviour switched on by an environment variable; it acts through
# the real hooks (on_train_begin gets the model being trained, on_train_step each step)
TROUBLE = '''
import errno, os, signal
import torch
from nlpapp import hookimpl

_model = None


def _at(name, step):
    return step == int(os.environ.get(name, "0"))


@hookimpl
def on_train_begin(config, model):
    global _model
    _model = model
    if os.environ.get("OOM_AT_STEP"):
        calls = [0]

        def out_of_memory(module, args, kwargs):
            if module.training:
                calls[0] += 1
                if _at("OOM_AT_STEP", calls[0]):
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        model.register_forward_pre_hook(out_of_memory, with_kwargs=True)
    if os.environ.get("FULL_DISK"):
        save = model.save_pretrained

        def save_on_a_full_disk(directory, *args, **kwargs):
            save(directory, *args, **kwargs)  # part of the adapter is written, then the disk is full
            if os.path.exists("/dev/full"):
                with open("/dev/full", "wb", buffering=0) as full:
                    full.write(b"0" * 65536)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        model.save_pretrained = save_on_a_full_disk


@hookimpl
def on_train_step(step, metrics):
    if _at("NAN_WEIGHT_AT_STEP", step):
        with torch.no_grad():
            next(p for p in _model.parameters() if p.requires_grad).fill_(float("nan"))
    if _at("SIGINT_AT_STEP", step):
        os.kill(os.getpid(), signal.SIGINT)
    if _at("KEYBOARD_INTERRUPT_AT_STEP", step):
        raise KeyboardInterrupt  # not an Exception: passes the hook guard, as a kill would
'''


@pytest.fixture
def trouble(register_plugin):
    register_plugin("trouble", TROUBLE)
    from nlpapp.api import Runtime

    return Runtime.create()


def config(model, data, output, **kw):
    base = dict(task="generation", model=str(model), data=[data], output=str(output), batch_size=4, epochs=2,
                lr=1e-3, lora_dropout=0.1, save_every=0, holdout=0.0)
    return TrainConfig(**{**base, **kw})


def checkpoints(out: Path) -> Path:
    return out.parent / f".{out.name}.checkpoints"


def interrupted_at_step_3(runtime, cfg, monkeypatch):
    """Train until a KeyboardInterrupt after step 3 (``save_every=2``: a checkpoint at step 2)."""
    monkeypatch.setenv("KEYBOARD_INTERRUPT_AT_STEP", "3")
    with pytest.raises(KeyboardInterrupt):
        train(runtime, cfg, show_progress=False)
    monkeypatch.delenv("KEYBOARD_INTERRUPT_AT_STEP")
    assert (checkpoints(Path(cfg.output)) / "step-0000002" / "state.pt").is_file()


def last_run() -> dict:
    from nlpapp import runs

    return runs.all_runs()[-1]


# --- 1. a pickle payload in a checkpoint never runs ----------------------------------------

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_a_pickle_payload_in_state_pt_is_refused_and_never_runs(trouble, tiny_model, gen_data, tmp_path,
                                                                monkeypatch):
    cfg = config(tiny_model("causal-lm"), gen_data, tmp_path / "out", save_every=2)
    interrupted_at_step_3(trouble, cfg, monkeypatch)
    marker = tmp_path / "payload-ran"
    torch.save({"optimizer": _Payload(marker)}, checkpoints(tmp_path / "out") / "step-0000002" / "state.pt")
    with pytest.raises(NlpappError, match="state.pt holds more than tensors and plain values") as refused:
        train(trouble, cfg, resume=True, show_progress=False)
    assert "\n" not in str(refused.value)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


# --- 2. a non-finite loss or weight stops the run before anything is written -----------------

def test_a_diverging_run_stops_at_the_first_non_finite_loss(cli, tiny_model, gen_data, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", gen_data, "-o",
                            str(out), "--batch-size", "4", "--epochs", "3", "--lr", "1e6", "--holdout", "0",
                            "--save-every", "1", "--no-progress")
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("nlpapp: error: training diverged at step ")
    step = int(line.split("diverged at step ")[1].split(":")[0])
    assert f"the last good checkpoint is {checkpoints(out) / f'step-{step - 1:07d}'}" in line
    assert not out.exists() and stdout == ""
    # every checkpoint on disk holds finite weights, and the log no non-finite loss
    saved = sorted(checkpoints(out).glob("step-*"))
    assert saved and all(torch.isfinite(w).all() for c in saved
                         for w in load_file(c / "trainable.safetensors").values())
    log = [json.loads(r) for r in (checkpoints(out) / "train-log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, step))
    assert last_run()["status"] == "failed" and "diverged" in last_run()["error"]


def test_a_run_diverging_before_any_checkpoint_leaves_nothing_behind(cli, tiny_model, gen_data, tmp_path):
    out = tmp_path / "out"
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", gen_data, "-o", str(out),
                       "--batch-size", "4", "--epochs", "3", "--lr", "1e6", "--no-progress")  # save every 50: none
    assert code == 1 and "no checkpoint was written" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # no output, no hidden checkpoint folder


def test_non_finite_weights_are_never_checkpointed(trouble, tiny_model, gen_data, tmp_path, monkeypatch):
    monkeypatch.setenv("NAN_WEIGHT_AT_STEP", "2")  # a weight goes NaN after step 2, before its checkpoint
    out = tmp_path / "out"
    with pytest.raises(TrainingError, match=r"diverged at step 2: the weight \S+lora_A\S+ is not finite at the "
                                            "checkpoint; nothing was written to the output and no checkpoint"):
        train(trouble, config(tiny_model("causal-lm"), gen_data, out, save_every=2), show_progress=False)
    assert not list(checkpoints(out).glob("step-*")) and not out.exists()


# --- 3. SIGINT and SIGTERM: finish the step, checkpoint, resume exactly ------------------------

class _NotHandled(BaseException):
    """SIGINT reached the test's own handler: training did not take it."""


def test_sigint_checkpoints_the_step_and_resume_ends_like_an_uninterrupted_run(trouble, tiny_model, gen_data,
                                                                               tmp_path, monkeypatch):
    model = tiny_model("causal-lm")
    whole = trouble.train(config(model, gen_data, tmp_path / "whole"))
    monkeypatch.setenv("SIGINT_AT_STEP", "3")

    def not_handled(*_):
        raise _NotHandled()

    previous = signal.signal(signal.SIGINT, not_handled)
    try:
        with pytest.raises(TrainingInterrupted, match=r"^SIGINT received: stopped after step 3 of 8 and saved a "
                                                      r"checkpoint in .*; run the same command with --resume") as stop:
            trouble.train(config(model, gen_data, tmp_path / "out"))
        assert signal.getsignal(signal.SIGINT) is not_handled  # the handler before training is back
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.delenv("SIGINT_AT_STEP")
    assert stop.value.exit_code == 130
    assert [p.name for p in checkpoints(tmp_path / "out").glob("step-*")] == ["step-0000003"]  # save_every=0
    assert not (tmp_path / "out").exists()
    assert last_run()["status"] == "interrupted"
    resumed = trouble.train(config(model, gen_data, tmp_path / "out"), resume=True)
    assert resumed.manifest["metrics"]["final_loss"] == whole.manifest["metrics"]["final_loss"]
    a, b = (load_file(p / "adapter_model.safetensors") for p in (tmp_path / "whole", tmp_path / "out"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(r) for r in (tmp_path / "out" / "train-log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))


SLOW_STEPS = '''
import os, time
from nlpapp import hookimpl

@hookimpl
def on_train_step(step, metrics):
    time.sleep(float(os.environ.get("SLOW_STEP_SECONDS", "0")))
'''


@pytest.mark.slow
def test_sigterm_checkpoints_marks_the_run_interrupted_and_resume_is_exact(tiny_model, gen_data, tmp_path,
                                                                           register_plugin):
    register_plugin("slow-steps", SLOW_STEPS)
    model = tiny_model("causal-lm")

    def cmd(out, *extra):  # held-out selection on, no regular checkpoints (--save-every 50 > 18 steps)
        return [sys.executable, "-m", "nlpapp", "train", "generation", "-m", str(model), "--data", gen_data, "-o",
                str(out), "--batch-size", "2", "--epochs", "3", "--lr", "1e-2", "--lora-dropout", "0.1",
                "--no-progress", "--json", *extra]

    whole = subprocess.run(cmd(tmp_path / "whole"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out, sink_path = tmp_path / "out", tmp_path / "out.log"
    with open(sink_path, "wb") as sink:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(cmd(out), env={**os.environ, "SLOW_STEP_SECONDS": "0.3"}, stdout=sink, stderr=sink)
    log = checkpoints(out) / "train-log.jsonl"
    deadline = time.time() + 240
    # past the first epoch's evaluation (step 6), so a best checkpoint must be kept too
    while time.time() < deadline and proc.poll() is None and not (
            log.is_file() and sum('"train"' in line for line in log.read_text().splitlines()) >= 8):
        time.sleep(0.05)
    assert proc.poll() is None, sink_path.read_text()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 143, sink_path.read_text()
    last = sink_path.read_text().strip().splitlines()[-1]
    assert last.startswith("nlpapp: error: SIGTERM received: stopped after step "), last
    assert not out.exists() and list(checkpoints(out).glob("step-*")) and list(checkpoints(out).glob("best-step-*"))
    listed = subprocess.run([sys.executable, "-m", "nlpapp", "runs", "list", "--kind", "train"], capture_output=True,
                            text=True, timeout=120)
    assert [line.split()[3] for line in listed.stdout.splitlines()[1:]] == ["succeeded", "interrupted"], listed.stdout
    resumed = subprocess.run(cmd(out, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    def final(p):
        return json.loads(p.stdout)

    assert final(resumed)["metrics"]["final_loss"] == final(whole)["metrics"]["final_loss"]
    assert final(resumed)["verdict"] == final(whole)["verdict"]
    a, b = (load_file(p / "adapter_model.safetensors") for p in (tmp_path / "whole", out))
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- 4. resume names what changed: an option, the data, the base weights -------------------------

def test_resume_names_a_changed_option_and_refuses_changed_data_or_base_weights(trouble, tiny_model, gen_data,
                                                                                tmp_path, monkeypatch):
    base = tmp_path / "base"
    shutil.copytree(tiny_model("causal-lm"), base)
    out = tmp_path / "out"
    cfg = config(base, gen_data, out, save_every=2)
    interrupted_at_step_3(trouble, cfg, monkeypatch)

    # the effective settings: the head's rate follows --lr when the recipe's is lower
    with pytest.raises(NlpappError, match=r"other training options \(--head-lr 0.002 → 0.005; --lr 0.001 → 0.005; "
                                          r"--seed 0 → 3\); resume with the same options"):
        train(trouble, config(base, gen_data, out, save_every=2, lr=5e-3, seed=3), resume=True, show_progress=False)

    original = Path(gen_data).read_text()
    Path(gen_data).write_text(original.replace("number 7 is here", "number 8 is here"))  # same path and size
    with pytest.raises(NlpappError, match=rf"since the checkpoint in .* was made, the content of --data {gen_data} "
                                          "changed; .* pass --allow-changed-inputs"):
        train(trouble, cfg, resume=True, show_progress=False)
    Path(gen_data).write_text(original)

    weights = load_file(base / "model.safetensors")
    name = min(weights)
    weights[name] = weights[name] + 0.5
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(NlpappError, match=r"the base model's file \S+model.safetensors changed; the base model's "
                                          "weights changed"):
        train(trouble, cfg, resume=True, show_progress=False)

    # the documented override
    manifest = train(trouble, config(base, gen_data, out, save_every=2, allow_changed_inputs=True), resume=True,
                     show_progress=False)
    assert manifest["metrics"]["steps"] == 8


# --- 5. out of memory, out of disk ---------------------------------------------------------------------

def test_out_of_memory_is_one_line_naming_the_batch_size_and_length(trouble, cli, tiny_model, gen_data, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("OOM_AT_STEP", "2")
    out = tmp_path / "out"
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", gen_data, "-o", str(out),
                       "--batch-size", "4", "--max-length", "64", "--epochs", "1", "--holdout", "0",
                       "--no-progress")
    assert code == 1
    assert err.strip().splitlines() == [(
        "nlpapp: error: out of memory on cpu at step 2 with --batch-size 4 and --max-length 64: lower --batch-size "
        "and raise --grad-accum to keep the global batch of 4, lower --max-length, or pass "
        "--gradient-checkpointing")]
    assert not out.exists()
    assert last_run()["status"] == "failed" and "out of memory" in last_run()["error"]


def test_a_full_disk_while_writing_the_adapter_leaves_the_old_one(trouble, cli, tiny_model, gen_data, tmp_path,
                                                                  monkeypatch):
    out = tmp_path / "out"
    args = ("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", gen_data, "-o", str(out),
            "--batch-size", "4", "--epochs", "1", "--holdout", "0", "--no-progress", "--overwrite")
    code, _, err = cli(*args)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setenv("FULL_DISK", "1")
    code, _, err = cli(*args, "--lr", "5e-3")
    assert code == 1
    assert err.strip().splitlines() == [(f"nlpapp: error: cannot write {out}: No space left on device; the existing "
                                         f"{out} is unchanged; free some space and train again")]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == [".out.checkpoints"]
    assert last_run()["status"] == "failed"


def test_output_that_is_or_holds_the_training_data_is_refused(cli, tiny_model, tmp_path):
    """--output replaces its folder whole with --overwrite: never the data the run reads."""
    folder = tmp_path / "work"
    folder.mkdir()
    data = folder / "gen.jsonl"
    data.write_text("".join(f'{{"prompt": "say {i}", "response": "number {i}"}}\n' for i in range(8)))
    for output, says in ((folder, "which this run reads"), (data, "is a file")):
        code, _, err = cli("train", "text-generation", "--model", str(tiny_model("causal-lm")), "--data", str(data),
                           "--output", str(output), "--overwrite", "--no-progress")
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1
    assert data.is_file() and len(data.read_text().splitlines()) == 8


def test_output_that_is_the_base_models_folder_is_refused(cli, tiny_model, tmp_path):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(tiny_model("causal-lm"), base)
    data = tmp_path / "gen.jsonl"
    data.write_text("".join(f'{{"prompt": "say {i}", "response": "number {i}"}}\n' for i in range(8)))
    code, _, err = cli("train", "text-generation", "--model", str(base), "--data", str(data), "--output", str(base),
                       "--overwrite", "--no-progress")
    assert code == 1 and f"would replace {base}, which this run reads" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in base.iterdir()) == sorted(p.name for p in tiny_model("causal-lm").iterdir())
