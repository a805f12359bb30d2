"""Declarative tasks: a YAML/TOML file drives run, train and eval; the command line overrides it."""

import json

import pytest

TOPICS = """
kind: sentiment
description: Tell good reviews from bad ones.
data:
  train: ${REVIEWS}/train.csv
  eval: ${REVIEWS}/dev.csv
columns:
  text: review
  label: stars
metrics: [classification]
model: fake-classifier
lora:
  r: 4
  alpha: 8
"""


@pytest.fixture
def tasks_dir(tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "reviews.yaml").write_text(TOPICS)
    data = tmp_path / "data"
    data.mkdir()
    (data / "dev.csv").write_text("review,stars\ngreat film,positive\nawful film,negative\nbad,positive\n")
    (data / "train.csv").write_text("review,stars\n" + "i loved this wonderful book,positive\nawful boring film,negative\n" * 4)
    monkeypatch.setenv("NLPAPP_TASKS", str(folder))
    monkeypatch.setenv("REVIEWS", str(data))
    return folder


def test_eval_takes_data_columns_metrics_and_model_from_the_file(cli, tasks_dir):
    code, out, err = cli("eval", "reviews", "--json", "--bootstrap", "20")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] == "fake-classifier" and report["examples"] == 3
    assert report["scores"]["accuracy"]["value"] == pytest.approx(200 / 3)


def test_the_command_line_overrides_the_file(cli, tasks_dir, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("review,stars\ngreat,positive\n")
    code, out, err = cli("eval", "reviews", "--data", str(other), "--json", "--bootstrap", "0")
    assert code == 0, err
    assert json.loads(out)["examples"] == 1


def test_run_uses_the_file_model(cli, tasks_dir):
    code, out, err = cli("run", "reviews", "great film", "--json")
    assert code == 0, err
    assert json.loads(out)["label"] == "positive"


def test_train_uses_the_file_data_and_lora(cli, tasks_dir, tiny_model, tmp_path):
    code, out, err = cli("train", "reviews", "--model", str(tiny_model("encoder")), "--output", str(tmp_path / "a"),
                         "--epochs", "1", "--batch-size", "4", "--no-progress", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert (manifest["config"]["lora_r"], manifest["config"]["lora_alpha"]) == (4, 8)
    assert manifest["config"]["data"][0].endswith("train.csv") and manifest["config"]["eval_data"][0].endswith("dev.csv")
    assert manifest["labels"] == ["negative", "positive"]


def test_task_file_errors(cli, tasks_dir, monkeypatch):
    monkeypatch.delenv("REVIEWS")
    code, _, err = cli("eval", "reviews")
    assert code == 1 and "needs the environment variable REVIEWS" in err
    (tasks_dir / "broken.yaml").write_text("kind: sentiment\nmetric: [x]\n")
    code, _, err = cli("eval", "broken")
    assert code == 1 and "unknown key 'metric'" in err
    code, _, err = cli("eval", "reveiws")
    assert code == 1 and "did you mean 'reviews'" in err


def test_toml_task_files(cli, tasks_dir, tmp_path):
    (tasks_dir / "mt.toml").write_text('kind = "translation"\nmodel = "fake-causal"\n[options]\ntarget_lang = "fr"\n')
    code, out, err = cli("run", "mt", "hello", "--json", "--max-new-tokens", "50")
    assert code == 0, err
    assert "French" in json.loads(out)["translation"]


def test_the_shipped_reuters_task_files_parse():
    from pathlib import Path

    from nlpapp import declarative

    for path in sorted((Path(__file__).parent.parent / "tasks").glob("*.yaml")):
        task_file = declarative.load(path)
        assert task_file.kind in ("summarization", "sentiment") and task_file.metrics
