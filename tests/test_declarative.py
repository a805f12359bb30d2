"""Declarative tasks: a YAML/TOML file drives run, train and eval; the command line overrides it."""

import json

import pytest

TOPICS = """
kind: sentiment  # the task's old name: task files written before the rename keep working
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


def test_the_shipped_reuters_task_files_are_found_from_any_folder(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository, no NLPAPP_TASKS, no NLPAPP_DATA
    for var in ("NLPAPP_TASKS", "NLPAPP_DATA", "NLPAPP_TOPICS_DATA"):
        monkeypatch.delenv(var, raising=False)
    code, out, err = cli("tasks", "--json")
    assert code == 0, err
    files = {f["name"]: f for task in json.loads(out) for f in task["task_files"]}
    assert (files["reuters-headlines"]["kind"], files["reuters-headlines"]["plugin"]) == ("summarization", "summarization")
    assert (files["reuters-topics"]["kind"], files["reuters-topics"]["plugin"]) == ("text-classification", "sentiment")
    code, out, _ = cli("tasks")
    assert "reuters-headlines  summarization" in out

    # its data still comes from NLPAPP_DATA: unset, one line that says so, before any model loads
    code, out, err = cli("eval", "reuters-headlines", "-m", "no-such-model")
    assert code == 1 and out == ""
    assert err.splitlines() == ["nlpapp: error: task 'reuters-headlines' needs the environment variable NLPAPP_DATA "
                                "for its data.eval (${NLPAPP_DATA}/reuters/dev.jsonl); set it, or pass --data FILE"]
    reuters = tmp_path / "data" / "reuters"
    reuters.mkdir(parents=True)
    (reuters / "dev.jsonl").write_text("".join(json.dumps({"id": n, "title": f"HEADLINE {n}", "body": f"body {n} text"})
                                               + "\n" for n in range(3)))
    monkeypatch.setenv("NLPAPP_DATA", str(tmp_path / "data"))
    code, out, err = cli("eval", "reuters-headlines", "-m", "fake-causal", "--json", "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 3 and "rougeL" in report["scores"]

    # the topics file is text classification with its own labels, not the sentiment preset
    code, out, err = cli("run", "reuters-topics", "-m", "fake-encoder", "--json", "oil prices and OPEC production")
    assert code == 0, err
    assert set(json.loads(out)["scores"]) == {"acq", "crude"}

    # a file of the same name in ./tasks wins over the shipped one
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "reuters-headlines.yaml").write_text("kind: summarization\ndescription: mine\n")
    code, out, err = cli("tasks", "--json")
    files = {f["name"]: f for task in json.loads(out) for f in task["task_files"]}
    assert files["reuters-headlines"]["description"] == "mine" and files["reuters-headlines"]["plugin"] is None


def test_a_relative_data_path_starts_where_the_user_runs_nlpapp(tmp_path, monkeypatch):
    """``./tasks/x.yaml`` with ``data: train: data/train.jsonl`` means ./data/train.jsonl (it
    was tasks/data/train.jsonl); data that sits only beside the task file is still found."""
    from nlpapp import declarative

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("{}\n")
    (tmp_path / "tasks" / "beside.jsonl").write_text("{}\n")
    (tmp_path / "tasks" / "x.yaml").write_text("kind: summarization\ndata:\n  train: data/train.jsonl\n"
                                               "  eval: beside.jsonl\n")
    task_file = declarative.load(tmp_path / "tasks" / "x.yaml")
    assert task_file.data_path("train") == "data/train.jsonl"
    assert task_file.data_path("eval") == str(tmp_path / "tasks" / "beside.jsonl")
