"""The library is the product: ``nlpapp.Runtime`` has every verb the CLI has, each taking a
typed config and returning a typed result, and options are typed and checked at the edge."""

import ast
import json
import re
from pathlib import Path

import pytest

import nlpapp
from nlpapp import (CompareConfig, EvalConfig, EvalResult, OptionError, RunFileConfig, Runtime, Score, TrainConfig,
                    TrainResult)

ROOT = Path(__file__).parent.parent


def test_all_is_the_public_surface():
    assert len(set(nlpapp.__all__)) == len(nlpapp.__all__)
    for name in nlpapp.__all__:
        assert hasattr(nlpapp, name), name
    for verb in ("run", "run_file", "train", "evaluate", "compare", "merge", "adapters", "adapter", "runs",
                 "run_record"):
        assert callable(getattr(Runtime, verb)), verb


def test_built_in_plugins_use_only_public_names():
    """Every ``from nlpapp... import`` in a built-in plugin's code takes names from ``nlpapp``
    itself, and only names in ``nlpapp.__all__``."""
    for path in ROOT.glob("plugins/*/nlpapp_*/__init__.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nlpapp"):
                assert node.module == "nlpapp", f"{path}: from {node.module} import ..."
                assert {a.name for a in node.names} <= set(nlpapp.__all__), path


def test_the_readme_python_section_runs(nlpapp_home, monkeypatch, tmp_path):
    block = re.search(r"## Python\n.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert block, "README.md has a '## Python' section with a python block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert isinstance(namespace["result"], EvalResult)
    assert namespace["result"].scores["accuracy"].ci95 is not None


def test_run_takes_texts_or_records_and_returns_typed_outputs(runtime):
    outputs = runtime.run("sentiment", ["a great film", {"text": "an awful film"}], model="fake-classifier")
    assert [o.label for o in outputs] == ["positive", "negative"]
    [one] = runtime.run("generation", "one two three", model="fake-causal", options={"max_new_tokens": 2})
    assert one.text == "three two"


@pytest.mark.parametrize("options, message", [
    ({"max_new_token": 1}, "option 'max_new_token' is unknown; did you mean 'max_new_tokens'?"),
    ({"max_new_tokens": "2"}, "option 'max_new_tokens' must be an integer, got '2'"),
    ({"max_new_tokens": 0}, "option 'max_new_tokens' must be at least 1, got 0"),
    ({"temperature": True}, "option 'temperature' must be a number, got True"),
])
def test_a_misspelled_or_ill_typed_option_is_one_error_naming_it(runtime, options, message):
    """Before typed options the typo was ignored (128 tokens generated) and "2" was a bare TypeError."""
    with pytest.raises(OptionError) as caught:
        runtime.run("generation", "one two three", model="fake-causal", options=options)
    assert str(caught.value).endswith(message)


def test_a_task_files_options_are_checked(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "short.yaml").write_text("kind: summarization\noptions:\n  lenght: headline\n")
    code, _, err = cli("run", "short", "some text", "-m", "fake-causal")
    assert code == 1
    assert err.strip().endswith("option 'lenght' is unknown; did you mean 'length'?")
    assert "tasks/short.yaml" in err and "Traceback" not in err


def test_a_cli_option_error_names_the_flag(cli):
    code, _, err = cli("run", "generation", "x", "-m", "fake-causal", "--max-new-tokens", "0")
    assert (code, err.strip()) == (1, "nlpapp: error: --max-new-tokens must be at least 1, got 0")


def test_run_file_validates_streams_and_writes_whole(runtime, tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": 7, "text": "great"}\n{"id": 8, "text": "awful"}\n')
    out = tmp_path / "out.jsonl"
    result = runtime.run_file(RunFileConfig(task="sentiment", input=str(data), output=str(out),
                                            model="fake-classifier"))
    assert result.outputs == 2 and result.run
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in rows] == [(7, "positive"), (8, "negative")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "great"}\n{"txt": "oops"}\n')
    with pytest.raises(nlpapp.InputError, match="bad.jsonl:2"):
        runtime.run_file(RunFileConfig(task="sentiment", input=str(bad), output=str(out), model="fake-classifier"))
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [7, 8]  # left as it was


def test_train_evaluate_compare_merge_and_adapters_from_python(runtime, tiny_model, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for t, lab in [("good film", "good"), ("bad film", "bad")] * 4))
    trained = runtime.train(TrainConfig(task="sentiment", model=str(tiny_model("encoder")), data=[str(data)],
                                        output=str(tmp_path / "topic"), epochs=1, batch_size=4, save_every=0))
    # 8 examples: 1 held out, 7 give one step of 4
    assert isinstance(trained, TrainResult) and trained.run and trained.scores["steps"] == 1
    assert trained.verdict["examples"] == 1 and trained.verdict["score"] == "macro_f1"
    assert runtime.run_record(trained.run)["kind"] == "train"

    result = runtime.evaluate(EvalConfig(task="sentiment", data=str(data), adapter=str(tmp_path / "topic"),
                                         bootstrap=20))
    assert isinstance(result.scores["accuracy"], Score) and result.examples == 8
    assert runtime.run_record(result.run)["metrics"]["accuracy"]["value"] == result.scores["accuracy"].value

    compared = runtime.compare(CompareConfig(task="sentiment", data=str(data), bootstrap=20,
                                             systems=["base", str(tmp_path / "topic")]))
    assert [s.system for s in compared.systems] == ["base", str(tmp_path / "topic")]
    assert set(compared.paired_p_values) >= {"accuracy"}

    [info] = [a for a in runtime.adapters() if a.name == "topic"]
    assert (info.task, info.head, info.labels) == ("text-classification", "sequence-classification", ("bad", "good"))
    merged = runtime.merge("topic", tmp_path / "merged")
    assert merged.max_abs_diff < 1e-4 and (tmp_path / "merged" / "config.json").is_file()


def test_configs_check_their_values():
    with pytest.raises(nlpapp.NlpappError, match="--compare takes two systems"):
        CompareConfig(task="sentiment", data="x", systems=["base"])
    with pytest.raises(nlpapp.NlpappError, match="--limit must be at least 1"):
        EvalConfig(task="sentiment", data="x", limit=0)
    with pytest.raises(nlpapp.NlpappError, match="--lr must be positive"):
        TrainConfig(task="t", model="m", data=["d"], output="o", lr=0)
    with pytest.raises(nlpapp.NlpappError, match="--limit must be an integer, got '3'"):
        EvalConfig(task="sentiment", data="x", limit="3")
    with pytest.raises(nlpapp.NlpappError, match="--output must be a folder to write the adapter to"):
        TrainConfig(task="t", data=["d"])
    assert TrainConfig(task="t", data="d", output="o").data == ["d"]  # one source, as EvalConfig takes it
