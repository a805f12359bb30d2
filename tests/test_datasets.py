"""Datasets: registered by plugins and usable wherever a file is; every bad record of a file
reported up front, before any model work; labelled data streamed, not held."""

import json
import textwrap

import pytest

from nlpapp.testing import install_plugin

DATASET_PLUGIN = textwrap.dedent('''
    from nlpapp import DatasetSpec, TaskFolder, hookimpl

    OPENED = []

    def reviews():
        OPENED.append(1)
        yield {"text": "a great and wonderful film", "label": "positive"}
        yield {"text": "an awful boring film", "label": "negative"}
        yield {"text": "good", "label": "negative"}
        yield {"text": "the worst", "label": "negative"}

    def big(n=400, size=200_000):
        for i in range(n):  # 80 MB of text in all, made as it is read
            yield {"text": ("good " if i % 2 else "bad ") * (size // 5), "label": "positive" if i % 2 else "negative"}

    @hookimpl
    def register_datasets(register):  # by the task's old name, as plugins written before the rename do
        register(DatasetSpec("reviews-sample", "sentiment", "four labelled reviews", open=reviews))
        register(DatasetSpec("big-reviews", "sentiment", "80 MB of reviews, generated", open=big))

    @hookimpl
    def register_task_folders(register):
        import pathlib
        register(TaskFolder("review tasks", str(pathlib.Path(__file__).parent / "review_tasks")))
''')

TASK_FILE = """
kind: sentiment
description: Reviews from the plugin's dataset.
data:
  eval: reviews-sample
metrics: [classification]
model: fake-classifier
"""


@pytest.fixture
def dataset_plugin(fake_plugin_site, tmp_path, monkeypatch):
    site = tmp_path / "site"
    install_plugin(site, "nlpapp-reviews", "reviews_plugin", sources={"reviews_plugin.py": DATASET_PLUGIN})
    (site / "review_tasks").mkdir()
    (site / "review_tasks" / "plugin-reviews.yaml").write_text(TASK_FILE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)  # no ./tasks of the repository in the search path
    return site


def test_a_registered_dataset_is_listed_and_evaluated(cli, dataset_plugin):
    code, out, err = cli("datasets", "--json")
    assert code == 0, err
    assert {"name": "reviews-sample", "task": "text-classification", "description": "four labelled reviews",
            "plugin": "nlpapp-reviews"} in json.loads(out)  # listed under the task's registered name
    for name in ("sentiment", "text-classification"):  # the dataset's task under either of its names
        code, out, err = cli("eval", name, "--data", "reviews-sample", "-m", "fake-classifier", "--json",
                             "--bootstrap", "20")
        assert code == 0, err
        report = json.loads(out)
        assert report["examples"] == 4
        assert report["scores"]["accuracy"]["value"] == 75.0  # "good" is labelled negative; the fake says positive


def test_run_reads_a_registered_dataset(cli, dataset_plugin):
    code, out, err = cli("run", "sentiment", "--input", "reviews-sample", "-m", "fake-classifier", "--json")
    assert code == 0, err
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["positive", "negative", "positive", "negative"]


def test_a_dataset_for_another_task_is_refused(cli, dataset_plugin):
    code, _, err = cli("eval", "qa", "--data", "reviews-sample", "-m", "fake-qa")
    assert code == 1
    assert "dataset 'reviews-sample' is for task 'text-classification', not 'question-answering'" in err


def test_train_reads_a_registered_dataset(cli, dataset_plugin, tiny_model, tmp_path):
    out_dir = tmp_path / "adapter"
    code, out, err = cli("train", "sentiment", "--data", "reviews-sample", "-m", str(tiny_model("encoder")),
                         "--output", str(out_dir), "--epochs", "1", "--batch-size", "2", "--no-progress", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["data"]["files"] == ["reviews-sample"]
    assert len(manifest["data"]["sha256"]) == 16


def test_a_plugin_task_folder_provides_task_files(cli, dataset_plugin, tmp_path):
    code, out, err = cli("eval", "plugin-reviews", "--json", "--bootstrap", "20")
    assert code == 0, err
    assert json.loads(out)["scores"]["accuracy"]["value"] == 75.0
    # a task file in ./tasks takes precedence over a plugin's file of the same name
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "plugin-reviews.yaml").write_text(TASK_FILE.replace("reviews-sample", "local.jsonl"))
    (tmp_path / "tasks" / "local.jsonl").write_text('{"text": "great", "label": "positive"}\n')
    code, out, err = cli("eval", "plugin-reviews", "--json", "--bootstrap", "20")
    assert code == 0, err
    assert json.loads(out)["examples"] == 1


def test_the_built_in_translation_plugin_ships_a_task_on_its_own_dataset(cli):
    code, out, err = cli("eval", "en-fr-sample", "-m", "fake-seq2seq", "--json", "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["data"] == "translation-en-fr-sample" and report["examples"] == 10
    assert set(report["scores"]) == {"bleu", "chrf"}


def test_every_bad_record_is_reported_before_any_model_work(cli, tmp_path):
    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join([
        '{"text": "fine", "label": "positive"}',
        '{"label": "positive"}',
        '{"text": "", "label": "negative"}',
        '{"text": "ok", "label": "negative"}',
        '{"text": "no label"}',
        '{"text": 5, "label": "negative"}',
    ]) + "\n")
    # a model that cannot be loaded: the schema errors must come first
    code, out, err = cli("eval", "sentiment", "--data", str(data), "-m", "no-such-model")
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"nlpapp: error: {data}: 4 invalid records; nothing was run"
    assert lines[1:] == [f"  {data}:2: missing field 'text' for task 'text-classification'",
                         f"  {data}:3: field 'text' is empty",
                         f"  {data}:5: no reference in field 'label' (map it with --columns label=COLUMN)",
                         f"  {data}:6: field 'text' must be text, got int"]


def test_run_validates_a_whole_input_file_first(cli, tmp_path):
    data = tmp_path / "inputs.csv"
    data.write_text("text\nfine\n\"\"\ngood\n")
    output = tmp_path / "out.jsonl"
    code, _, err = cli("run", "sentiment", "--input", str(data), "-m", "fake-classifier", "-o", str(output))
    assert code == 1
    assert err.strip() == f"nlpapp: error: {data}:3: field 'text' is empty"
    assert not output.exists()


def test_train_reports_every_bad_example(cli, tiny_model, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n{"text": "c", "label": ""}\n')
    code, _, err = cli("train", "sentiment", "--data", str(data), "-m", str(tiny_model("encoder")),
                       "--output", str(tmp_path / "out"), "--no-progress")
    assert code == 1
    assert f"{data}: 2 invalid records" in err
    assert f"{data}:2: missing target field 'label'" in err and f"{data}:3: target field 'label' is empty" in err


def test_more_than_ten_problems_are_summarised(cli, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n' + '{"label": "positive"}\n' * 25)
    code, _, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier")
    assert code == 1
    assert "25 invalid records" in err and "... and 15 more" in err and len(err.strip().splitlines()) == 12


def test_labelled_data_streams_through_eval(dataset_plugin):
    """80 MB of generated records: evaluation keeps predictions and references, not inputs."""
    import tracemalloc

    from nlpapp.api import Runtime
    from nlpapp.evaluation.evaluate import evaluate

    runtime = Runtime.create()
    tracemalloc.start()
    try:
        report = evaluate(runtime, "sentiment", "big-reviews", model="fake-classifier", rounds=0, batch_size=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report["examples"] == 400 and report["scores"]["accuracy"]["value"] == 100.0
    assert peak < 40_000_000, f"peak {peak / 1e6:.0f} MB: the inputs were held in memory"


def test_a_registered_dataset_is_opened_once_to_validate_and_once_per_system(dataset_plugin):
    import reviews_plugin

    from nlpapp.api import Runtime
    from nlpapp.evaluation.evaluate import compare

    reviews_plugin.OPENED.clear()
    compare(Runtime.create(), "sentiment", "reviews-sample", ["fake-classifier", "fake-encoder"], rounds=10)
    assert len(reviews_plugin.OPENED) == 3


@pytest.mark.parametrize("value, problem", [
    ("NaN", "field 'summary' must be text, got float nan"),
    ("true", "field 'summary' must be text, got bool True"),
    ('{"a": 1}', "field 'summary' must be text, got dict {'a': 1}"),
    ('["ok", null]', "reference 2 in field 'summary' must be text, got NoneType None"),
    ('["a", 5.5]', "reference 2 in field 'summary' must be text, got float 5.5"),
    ('{"text": ["x", null]}', "reference 2 in field 'summary' must be text, got NoneType None"),
])
def test_a_reference_that_is_not_text_is_refused_not_scored_as_its_repr(cli, tmp_path, value, problem):
    data = tmp_path / "labelled.jsonl"
    data.write_text('{"text": "Shares rose.", "summary": ' + value + "}\n")
    code, out, err = cli("eval", "summarization", "--data", str(data), "-m", "fake-seq2seq")
    assert code == 1 and out == ""
    assert f"{data}:1: {problem}" in err and "Traceback" not in err


def test_an_integer_label_is_a_class_id(runtime):
    [reference] = runtime.task("text-classification").references({"text": "x", "label": 1})
    assert reference == "1"
