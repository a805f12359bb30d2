"""Issue 11 part 9: ``eval --limit/--output/--dtype``, ``train --dtype``, re-running an
interrupted ``train`` without ``--resume``, and two adapter folders with the same name."""

import json

import pytest

REVIEWS = [("r1", "i loved this wonderful book", "positive"), ("r2", "awful boring film", "negative"),
           ("r3", "a great read", "positive"), ("r4", "the worst", "negative")]


@pytest.fixture
def reviews(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, "label": label}) + "\n" for i, t, label in REVIEWS))
    return path


def _one_line(code, err, exit_code=1):
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0]


# --- 4. eval --limit, --output, --dtype; train --dtype -------------------------------------------

def test_eval_limit_scores_the_first_examples(cli, reviews):
    code, out, err = cli("eval", "sentiment", "-m", "fake-classifier", "--data", str(reviews), "--limit", "2",
                         "--json", "--bootstrap", "0")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 2 and [p["id"] for p in report["predictions"]] == ["r1", "r2"]


def test_eval_output_writes_the_predictions_as_jsonl(cli, reviews, tmp_path):
    target = tmp_path / "out" / "predictions.jsonl"
    code, out, err = cli("eval", "sentiment", "-m", "fake-classifier", "--data", str(reviews), "--output", str(target),
                         "--bootstrap", "0")
    assert code == 0, err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["id"], r["references"]) for r in rows] == [(i, [label]) for i, _, label in REVIEWS]
    assert all(r["prediction"] in ("positive", "negative") for r in rows)
    assert f"wrote 4 predictions to {target}" in err and "accuracy" in out


def test_a_failed_eval_leaves_the_output_as_it_was(cli, reviews, tmp_path):
    target = tmp_path / "predictions.jsonl"
    target.write_text("earlier\n")
    code, _, err = cli("eval", "sentiment", "-m", "no-such-model", "--data", str(reviews), "--output", str(target))
    assert code == 1
    assert target.read_text() == "earlier\n" and list(tmp_path.glob("*.partial")) == []


def test_eval_output_does_not_go_with_compare(cli, reviews, tmp_path):
    code, _, err = cli("eval", "sentiment", "--data", str(reviews), "--compare", "fake-classifier,fake-encoder",
                       "--output", str(tmp_path / "p.jsonl"))
    assert "--output writes one system's predictions; it does not go with --compare" in _one_line(code, err)


def test_eval_takes_dtype_like_run(cli, reviews, tiny_model, nlpapp_home):
    code, out, err = cli("eval", "sentiment", "-m", str(tiny_model("encoder")), "--data", str(reviews),
                         "--dtype", "bfloat16", "--json", "--bootstrap", "0")
    assert code == 0, err
    run = json.loads((nlpapp_home / "runs" / json.loads(out)["run"] / "run.json").read_text())
    assert run["config"]["dtype"] == "bfloat16"


# --- 5. an interrupted train, run again without --resume ---------------------------------------

INTERRUPT = '''
import os
from nlpapp import hookimpl

@hookimpl
def on_train_step(step, metrics):
    if step == int(os.environ.get("INTERRUPT_AT_STEP", "0")):
        raise KeyboardInterrupt  # as Ctrl-C would
'''


def _train(cli, model, data, out, *extra):
    return cli("train", "generation", "--objective", "lm", "-m", str(model), str(data), "--output", str(out),
               "--max-length", "16", "--batch-size", "2", "--epochs", "1", "--save-every", "2", "--no-progress", *extra)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the weather is nice today and the sun is shining. " * 20)
    return path


def test_an_interrupted_run_is_not_silently_restarted(cli, register_plugin, monkeypatch, tiny_model, corpus, tmp_path):
    register_plugin("interrupt", INTERRUPT)
    model, out = tiny_model("causal-lm"), tmp_path / "adapters" / "lm"
    monkeypatch.setenv("INTERRUPT_AT_STEP", "5")
    code, _, err = _train(cli, model, corpus, out)
    assert code == 130 and not out.exists()
    monkeypatch.delenv("INTERRUPT_AT_STEP")
    code, _, err = _train(cli, model, corpus, out)
    assert _one_line(code, err) == (f"nlpapp: error: an interrupted run into {out} left a checkpoint at step 4; "
                                    "pass --resume to continue it or --overwrite to start over")
    code, _, err = _train(cli, model, corpus, out, "--resume", "--json")
    assert code == 0, err
    log = [json.loads(line) for line in (out / "train-log.jsonl").read_text().splitlines()]
    log = [r for r in log if r["kind"] == "train"]
    assert log[0]["step"] == 1 and all(b["step"] == a["step"] + 1 for a, b in zip(log, log[1:]))


def test_overwrite_starts_an_interrupted_run_over(cli, register_plugin, monkeypatch, tiny_model, corpus, tmp_path):
    register_plugin("interrupt", INTERRUPT)
    model, out = tiny_model("causal-lm"), tmp_path / "lm"
    monkeypatch.setenv("INTERRUPT_AT_STEP", "3")
    assert _train(cli, model, corpus, out)[0] == 130
    monkeypatch.delenv("INTERRUPT_AT_STEP")
    code, _, err = _train(cli, model, corpus, out, "--overwrite")
    assert code == 0, err
    assert not (tmp_path / ".lm.checkpoints").exists()


def test_train_takes_dtype_float32_and_refuses_others_in_one_line(cli, reviews, tiny_model, corpus, tmp_path):
    code, _, err = cli("train", "sentiment", "--data", str(reviews), "--output", str(tmp_path / "a"),
                       "--dtype", "bfloat16")
    line = _one_line(code, err)
    assert "--dtype bfloat16: training keeps its weights in float32" in line and "--dtype auto or float32" in line
    assert "--mixed-precision bf16" in line
    assert not (tmp_path / "a").exists()
    code, _, err = _train(cli, tiny_model("causal-lm"), corpus, tmp_path / "b", "--max-steps", "1", "--dtype", "float32")
    assert code == 0, err
    manifest = json.loads((tmp_path / "b" / "nlpapp-adapter.json").read_text())
    assert manifest["config"]["mixed_precision"] == "no"  # float32 asked for: no bf16 compute either


# --- 6. two folders with the same name --------------------------------------------------------

def test_a_second_folder_of_the_same_name_does_not_take_the_name_over(cli, tiny_model, corpus, tmp_path):
    model = tiny_model("causal-lm")
    first, second = tmp_path / "one" / "topic", tmp_path / "other" / "topic"
    assert _train(cli, model, corpus, first, "--max-steps", "1")[0] == 0
    code, _, err = _train(cli, model, corpus, second, "--max-steps", "1")
    assert code == 0, err
    assert (f"nlpapp: warning: the adapter name 'topic' is taken by {first}; {second} is remembered as 'topic-2'"
            in err)
    code, out, _ = cli("adapters", "list", "--json")
    assert {row["name"]: row["path"] for row in json.loads(out)} == {"topic": str(first), "topic-2": str(second)}
    # training into the same folder again keeps its name
    code, _, err = _train(cli, model, corpus, second, "--max-steps", "1", "--overwrite")
    assert code == 0 and "warning" not in err
    code, out, _ = cli("adapters", "list", "--json")
    assert sorted(row["name"] for row in json.loads(out)) == ["topic", "topic-2"]
