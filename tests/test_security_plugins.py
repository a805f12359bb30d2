"""Plugins are isolated in time and in state: a slow plugin is named, observers cannot change a
run, a task's bug or an out-of-memory names the plugin, built-ins win name conflicts, strict
mode makes any plugin problem fatal, and a plugin cannot take over another's command."""

import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nlpapp.plugins import load_plugins

ROOT = Path(__file__).parent.parent
STRICT_SUFFIX = " (fatal with --strict-plugins or NLPAPP_STRICT_PLUGINS=1)"

# a task plugin whose predict is whatever the test needs
TASK_PLUGIN = '''
from dataclasses import dataclass
from nlpapp import Head, InputError, TaskKind, hookimpl


@dataclass
class In:
    text: str


@dataclass
class Out:
    text: str


class Probe(TaskKind):
    name = "{name}"
    description = "a task whose predict misbehaves"
    heads = (Head.CAUSAL_LM,)
    default_model = "fake-causal"
    Input = In
    Output = Out

    def predict(self, model, inputs, options, stream=None):
{body}

    def render(self, output):
        return output.text


@hookimpl
def register_task_kinds(register):
    register(Probe())
'''


def _task_plugin(register_plugin, plugin, task, body):
    register_plugin(plugin, TASK_PLUGIN.format(name=task, body="\n".join("        " + line for line in body)))


# --- 1. time: each plugin's import and hooks are timed; a slow one is named -------------------

SLEEPY = """
import time
from nlpapp import DatasetSpec, hookimpl

@hookimpl
def register_datasets(register):
    time.sleep(0.3)
    register(DatasetSpec("sleepy-set", "text-generation", "one line", open=lambda: [{"prompt": "hi"}]))
"""


def test_a_slow_registration_hook_is_timed_warned_and_diagnosed(register_plugin, cli, monkeypatch):
    register_plugin("sleepy", SLEEPY)
    monkeypatch.setenv("NLPAPP_PLUGIN_SLOW_SECONDS", "0.1")  # the default budget is 1 s
    code, out, err = cli("tasks")
    assert code == 0  # slow is a warning: the command still runs
    assert "nlpapp: warning: plugin 'sleepy' is slow: its register_datasets took 0.3" in err
    assert "(budget 0.1 s, NLPAPP_PLUGIN_SLOW_SECONDS)" in err and "NLPAPP_DISABLE_PLUGINS=sleepy skips it" in err
    code, out, _ = cli("plugins", "list", "--json")
    info = {i["name"]: i for i in json.loads(out)}["sleepy"]
    assert info["hook_seconds"]["register_datasets"] >= 0.3 and info["slow"][0].startswith("register_datasets took")
    code, out, _ = cli("plugins", "doctor", "--json")
    assert code == 0  # a warning, not an error
    slow = [f for f in json.loads(out) if f["plugin"] == "sleepy"]
    assert len(slow) == 1 and slow[0]["level"] == "warning"
    assert slow[0]["message"].startswith("slow at load: its register_datasets took 0.3")
    assert "NLPAPP_DISABLE_PLUGINS=sleepy" in slow[0]["fix"]
    code, out, _ = cli("plugins", "doctor")
    assert "no problems found" not in out and "warning sleepy: slow at load: its register_datasets took" in out


def test_under_the_default_budget_nothing_is_said(register_plugin, cli, monkeypatch):
    register_plugin("sleepy", SLEEPY)
    monkeypatch.delenv("NLPAPP_PLUGIN_SLOW_SECONDS", raising=False)
    code, _, err = cli("tasks")
    assert code == 0 and "slow" not in err
    monkeypatch.setenv("NLPAPP_PLUGIN_SLOW_SECONDS", "soon")
    code, _, err = cli("tasks")
    assert (code, err) == (1, "nlpapp: error: NLPAPP_PLUGIN_SLOW_SECONDS must be a positive number of seconds, "
                              "got 'soon'\n")


# --- 2. state: observers get read-only copies -------------------------------------------------

MEDDLER = """
from nlpapp import hookimpl

@hookimpl
def on_train_begin(config, model):
    config.lr = 123.0

@hookimpl
def on_train_step(step, metrics):
    metrics["loss"] = -1.0

@hookimpl
def on_evaluate(step, metrics):
    metrics.clear()

@hookimpl
def on_train_end(output, manifest):
    manifest["metrics"]["final_loss"] = 0.0
"""

MOVER = """
import os
from nlpapp import hookimpl

@hookimpl
def on_train_begin(config, model):
    config.output = os.environ["HIJACK_TO"]
    config.data.append("stolen.jsonl")
"""

WITNESS = """
import json, os
from nlpapp import hookimpl

def _log(**data):
    with open(os.environ["OBSERVED"], "a") as f:
        f.write(json.dumps(data) + "\\n")

@hookimpl
def on_train_begin(config, model):
    _log(lr=config.lr, output=config.output, data=config.data, config=config.as_dict(),
         trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))

@hookimpl
def on_train_step(step, metrics):
    _log(step=step, loss=metrics["loss"])

@hookimpl
def on_train_end(output, manifest):
    _log(end=json.loads(json.dumps(manifest))["metrics"])
"""


def test_observers_cannot_change_the_run(register_plugin, cli, tiny_model, tmp_path, monkeypatch):
    for name, source in [("meddler", MEDDLER), ("mover", MOVER), ("witness", WITNESS)]:
        register_plugin(name, source)
    hijack, observed = tmp_path / "hijacked", tmp_path / "observed.jsonl"
    monkeypatch.setenv("HIJACK_TO", str(hijack))
    monkeypatch.setenv("OBSERVED", str(observed))
    data, out = tmp_path / "train.jsonl", tmp_path / "adapter"
    data.write_text('{"prompt": "a", "response": "b"}\n' * 4)
    code, _, err = cli("train", "generation", "--data", str(data), "-m", str(tiny_model("causal-lm")), "--output",
                       str(out), "--epochs", "2", "--batch-size", "2", "--lr", "0.01", "--eval-data", str(data),
                       "--max-new-tokens", "4", "--no-progress")
    assert code == 0, err
    # the run used what the user asked for, and wrote it where asked
    manifest = json.loads((out / "nlpapp-adapter.json").read_text())
    assert manifest["config"]["lr"] == 0.01 and manifest["config"]["output"] == str(out)
    assert manifest["config"]["data"] == [str(data)] and not hijack.exists()
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert all(r["loss"] > 0 for r in log if "loss" in r)
    assert manifest["metrics"]["final_loss"] > 0
    # each observer's change is its failure, said once, naming it
    for plugin, hook, what in [("meddler", "on_train_begin", "cannot change TrainConfig.lr"),
                               ("meddler", "on_train_step", "this FrozenDict is read-only"),
                               ("meddler", "on_evaluate", "this FrozenDict is read-only"),
                               ("meddler", "on_train_end", "this FrozenDict is read-only"),
                               ("mover", "on_train_begin", "cannot change TrainConfig.output")]:
        line = f"nlpapp: warning: plugin '{plugin}' failed in {hook} (ignored from now on): ReadOnlyError: {what}"
        assert err.count(line) == 1, (line, err)
    # the other observer saw the real values, and a read-only config still reads as one
    events = [json.loads(line) for line in observed.read_text().splitlines()]
    assert events[0]["lr"] == 0.01 and events[0]["output"] == str(out) and events[0]["data"] == [str(data)]
    assert events[0]["config"]["lr"] == 0.01 and events[0]["trainable"] > 0
    losses = [e["loss"] for e in events if "step" in e]
    assert losses and all(loss > 0 for loss in losses)
    assert events[-1]["end"]["final_loss"] == manifest["metrics"]["final_loss"]


def test_a_read_only_copy_still_serialises_and_copies_to_a_changeable_one():
    from nlpapp import TrainConfig
    from nlpapp.hookcall import ReadOnlyError, freeze

    config = TrainConfig(task="text-generation", data=["a.jsonl"], output="out", lr=0.01)
    frozen = freeze(config)
    assert isinstance(frozen, TrainConfig) and repr(frozen) == repr(config)
    assert dataclasses.asdict(frozen) == dataclasses.asdict(config)
    with pytest.raises(ReadOnlyError):
        frozen.data.append("b.jsonl")
    mine = copy.deepcopy(frozen)
    mine.lr, mine.data = 1.0, mine.data + ["b"]  # a copy is the observer's own
    changed = dataclasses.replace(frozen, lr=2.0)
    changed.output = "elsewhere"
    assert config.lr == 0.01 and config.data == ["a.jsonl"] and config.output == "out" and frozen.lr == 0.01
    manifest = freeze({"metrics": {"loss": 1.5}, "labels": ["a", "b"]})
    assert json.loads(json.dumps(manifest)) == {"metrics": {"loss": 1.5}, "labels": ["a", "b"]}
    for change in (lambda m: m.update(x=1), lambda m: m["metrics"].pop("loss"), lambda m: m["labels"].append("c")):
        with pytest.raises(ReadOnlyError):
            change(manifest)
    plain = copy.deepcopy(manifest)
    plain["labels"].append("c")
    assert type(plain) is dict and type(plain["labels"]) is list


# --- 3. a task's predict: bugs name the plugin; out of memory halves the batch once ----------

def test_an_exception_in_a_tasks_predict_names_the_plugin_on_one_line(register_plugin, cli):
    _task_plugin(register_plugin, "buggy", "buggy-task", ["return [1 / 0 for _ in inputs]"])
    code, _, err = cli("run", "buggy-task", "hi", "-m", "fake-causal")
    assert (code, err) == (1, "nlpapp: error: plugin 'buggy' (task 'buggy-task') failed in predict: "
                              "ZeroDivisionError: division by zero\n")
    _task_plugin(register_plugin, "short", "short-task", ["return []"])
    code, _, err = cli("run", "short-task", "hi", "-m", "fake-causal")
    assert (code, err) == (1, "nlpapp: error: plugin 'short' (task 'short-task') returned 0 outputs from predict "
                              "for 1 inputs; predict returns a list with one output per input\n")
    # a user error the task raises on purpose passes through as it is
    _task_plugin(register_plugin, "picky", "picky-task", ["raise InputError('the text must be in French')"])
    code, _, err = cli("run", "picky-task", "hi", "-m", "fake-causal")
    assert (code, err) == (1, "nlpapp: error: the text must be in French\n")


OOM_ABOVE_ONE = ["if len(inputs) > 1:", "    raise MemoryError('no room for %d' % len(inputs))",
                 "return [Out(i.text.upper()) for i in inputs]"]


def test_out_of_memory_retries_the_batch_in_halves_once(register_plugin, cli, tmp_path):
    _task_plugin(register_plugin, "roomy", "roomy-task", OOM_ABOVE_ONE)
    texts = tmp_path / "in.txt"
    texts.write_text("ab\ncd\nef\n")
    code, out, err = cli("run", "roomy-task", "--input", str(texts), "-m", "fake-causal", "--batch-size", "2")
    assert code == 0, err
    assert out.splitlines() == ["AB", "CD", "EF"]  # every input, in order
    assert err.count("nlpapp: warning: out of memory on a batch of 2; running batches of 1 from now on "
                     "(pass --batch-size 1 to start there)") == 1


def test_out_of_memory_twice_is_one_line_saying_what_to_do(register_plugin, cli, tmp_path):
    _task_plugin(register_plugin, "greedy", "greedy-task", [
        "import torch", "if len(inputs) > 1:", "    raise torch.cuda.OutOfMemoryError('CUDA out of memory')",
        "return [Out(i.text) for i in inputs]"])
    texts = tmp_path / "in.txt"
    texts.write_text("ab\ncd\nef\ngh\n")
    code, _, err = cli("run", "greedy-task", "--input", str(texts), "-m", "fake-causal", "--batch-size", "4")
    assert code == 1
    assert err.splitlines()[-1] == ("nlpapp: error: out of memory running task 'greedy-task' on a batch of 2: pass a "
                                    "smaller --batch-size (e.g. 1), shorter inputs, a smaller model, or --device cpu")


# --- 4. precedence: built-ins win a name; the loser keeps the rest ---------------------------

CLASH = """
from dataclasses import dataclass
from nlpapp import Head, MetricResult, MetricSpec, TaskKind, hookimpl


@dataclass
class In:
    question: str
    context: str


@dataclass
class Out:
    answer: str


class MyQA(TaskKind):
    name = "question-answering"
    description = "a third-party question answering"
    heads = (Head.CAUSAL_LM,)
    default_model = "fake-causal"
    Input = In
    Output = Out

    def predict(self, model, inputs, options, stream=None):
        return [Out("mine") for _ in inputs]

    def render(self, output):
        return output.answer


@hookimpl
def register_task_kinds(register):
    register(MyQA())


@hookimpl
def register_metrics(register):
    register(MetricSpec("aa-exact", "exact match", compute=lambda p, r: MetricResult({}, "aa-exact", None)))
"""


def test_a_built_in_task_name_stays_built_in_and_the_loser_keeps_the_rest(register_plugin, cli):
    register_plugin("aa-clash", CLASH)  # sorts before "qa": it used to win, and qa lost its dataset too
    plugins = load_plugins(warn=lambda m: None)
    assert plugins.registries.tasks.plugin_of("question-answering") == "qa"
    assert plugins.plugins["qa"].registered == {"task": ["question-answering"], "dataset": ["qa-sample"]}
    clash = plugins.plugins["aa-clash"]
    assert clash.status == "loaded" and clash.registered == {"metric": ["aa-exact"]}
    assert clash.conflicts == ["task 'question-answering' is registered by both plugin 'qa' and plugin 'aa-clash'; "
                               "plugin 'qa' keeps it (built-in plugins win); NLPAPP_OVERRIDE_PLUGINS=aa-clash gives "
                               "it to plugin 'aa-clash'"]
    code, out, err = cli("plugins", "doctor", "--json")
    assert code == 0
    [finding] = [f for f in json.loads(out) if f["plugin"] == "aa-clash"]
    assert finding["level"] == "warning" and finding["message"] == "name conflict: " + clash.conflicts[0]
    assert finding["fix"].endswith("NLPAPP_OVERRIDE_PLUGINS=aa-clash")


def test_the_user_can_give_a_built_in_name_to_a_plugin(register_plugin, cli, monkeypatch):
    register_plugin("zz-qa", CLASH.replace("aa-exact", "zz-exact"))
    monkeypatch.setenv("NLPAPP_OVERRIDE_PLUGINS", "zz-qa")
    plugins = load_plugins(warn=lambda m: None)
    assert plugins.registries.tasks.plugin_of("question-answering") == "zz-qa"
    assert plugins.registries.datasets.plugin_of("qa-sample") == "qa"  # the built-in keeps the rest
    assert plugins.plugins["qa"].conflicts == [] and plugins.plugins["qa"].overridden
    code, out, _ = cli("plugins", "doctor", "--json")
    assert code == 0
    assert [f["level"] for f in json.loads(out) if f["plugin"] == "qa"] == ["info"]
    code, out, err = cli("--strict-plugins", "run", "question-answering", "q", "--context", "c", "-m", "fake-causal")
    assert (code, out) == (0, "mine\n"), err  # chosen by the user: not a problem, even in strict mode


# --- 5. strict mode --------------------------------------------------------------------------

def test_strict_plugins_flag_and_variable_make_a_load_failure_fatal(register_plugin, cli, monkeypatch):
    register_plugin("broken", "import nlpapp_no_such_dependency\n")
    expected = ("nlpapp: error: plugin 'broken': failed to load: ModuleNotFoundError: No module named "
                "'nlpapp_no_such_dependency'" + STRICT_SUFFIX + "\n")
    code, _, err = cli("tasks")
    assert code == 0 and "skipped" in err  # lenient by default
    assert cli("--strict-plugins", "tasks")[::2] == (1, expected)
    assert "NLPAPP_STRICT_PLUGINS" not in os.environ  # the flag lasts one invocation
    monkeypatch.setenv("NLPAPP_STRICT_PLUGINS", "1")
    assert cli("tasks")[::2] == (1, expected)
    # diagnosing (and removing) a broken plugin still works, and fails the check
    code, out, _ = cli("plugins", "doctor")
    assert code == 1 and "error   broken: failed to load" in out


def test_strict_mode_refuses_a_conflict_and_a_slow_hook(register_plugin, cli, monkeypatch):
    register_plugin("aa-clash", CLASH)
    code, _, err = cli("--strict-plugins", "tasks")
    assert (code, err) == (1, "nlpapp: error: plugin 'aa-clash': task 'question-answering' is registered by both "
                              "plugin 'qa' and plugin 'aa-clash'; plugin 'qa' keeps it (built-in plugins win); "
                              "NLPAPP_OVERRIDE_PLUGINS=aa-clash gives it to plugin 'aa-clash'" + STRICT_SUFFIX + "\n")
    monkeypatch.setenv("NLPAPP_DISABLE_PLUGINS", "aa-clash")
    register_plugin("sleepy", SLEEPY)
    monkeypatch.setenv("NLPAPP_PLUGIN_SLOW_SECONDS", "0.1")
    code, _, err = cli("--strict-plugins", "tasks")
    assert code == 1 and err.startswith("nlpapp: error: plugin 'sleepy': is slow: register_datasets took 0.3")
    assert err.endswith(STRICT_SUFFIX + "\n") and err.count("\n") == 1
    code, out, _ = cli("--strict-plugins", "plugins", "doctor")  # warnings fail the check in strict mode
    assert code == 1 and "warning sleepy: slow at load" in out


def test_strict_mode_makes_an_observer_failure_fatal(register_plugin, cli, tiny_model, tmp_path, monkeypatch):
    register_plugin("meddler", MEDDLER)
    monkeypatch.setenv("NLPAPP_STRICT_PLUGINS", "1")
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n' * 4)
    code, _, err = cli("train", "generation", "--data", str(data), "-m", str(tiny_model("causal-lm")), "--output",
                       str(tmp_path / "adapter"), "--epochs", "1", "--batch-size", "2", "--holdout", "0",
                       "--no-progress")
    assert code == 1
    assert err.splitlines()[-1] == ("nlpapp: error: plugin 'meddler' failed in on_train_begin: ReadOnlyError: "
                                    "cannot change TrainConfig.lr: observers are given read-only copies"
                                    + STRICT_SUFFIX)


def test_strict_mode_exit_status_in_a_real_process(register_plugin):
    register_plugin("broken", "import nlpapp_no_such_dependency\n")
    run = subprocess.run([sys.executable, "-m", "nlpapp", "--strict-plugins", "tasks"], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "nlpapp: error: plugin 'broken': failed to load: ModuleNotFoundError: No module named "
        "'nlpapp_no_such_dependency'" + STRICT_SUFFIX]


# --- further: a plugin cannot take over a command, nor hand back a wrong model -------------------

HIJACK = """
import click
from nlpapp import hookimpl

@click.command("train")
def fake_train():
    click.echo("your data is mine")

@hookimpl
def register_commands(cli):
    cli.add_command(fake_train)
"""


def test_a_plugin_cannot_replace_a_built_in_command(register_plugin, cli):
    register_plugin("hijack", HIJACK)
    code, out, err = cli("train", "--help")
    assert code == 0 and "your data is mine" not in out and "Fine-tune a model" in out
    assert ("nlpapp: warning: plugin 'hijack' tried to replace or remove the command(s) train; its commands are not "
            "added (a plugin may only add commands of new names)") in err
    code, out, _ = cli("plugins", "doctor", "--json")
    [finding] = [f for f in json.loads(out) if f["plugin"] == "hijack" and "tried to replace" in f["message"]]
    assert "NLPAPP_OVERRIDE_PLUGINS" not in finding["fix"]  # commands are add-only: no override makes it win
    code, _, err = cli("--strict-plugins", "tasks")
    assert code == 1 and err.startswith("nlpapp: error: plugin 'hijack' tried to replace")


LIAR = """
from nlpapp import Head, ModelPreset, hookimpl

@hookimpl
def register_models(register):
    register(ModelPreset("liar-model", Head.CAUSAL_LM, "a loader that returns a dict", "test", "MIT",
                         locate=lambda: "liar://model"))

@hookimpl(tryfirst=True)
def load_model(path):
    return {"weights": "none"} if path == "liar://model" else None
"""


def test_a_loader_returning_the_wrong_type_is_named_at_once(register_plugin, cli):
    register_plugin("liar", LIAR)
    code, _, err = cli("run", "generation", "hi", "-m", "liar-model")
    assert (code, err) == (1, "nlpapp: error: plugin 'liar' failed in load_model: it returned a dict; a loader "
                              "returns an nlpapp.Model, or None to let the next plugin try\n")


def test_the_plugin_rules_are_documented():
    page = (ROOT / "docs" / "plugins.md").read_text()
    for needle in ("NLPAPP_STRICT_PLUGINS", "--strict-plugins", "NLPAPP_OVERRIDE_PLUGINS",
                   "NLPAPP_PLUGIN_SLOW_SECONDS", "read-only"):
        assert needle in page, needle
