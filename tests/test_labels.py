"""A model's label names against the data's: eval and train refuse labels that cannot match
(in one line, naming both sets and the --label-map to pass), and a label map renames them.

The classifiers are tiny real BERT models (``nlpapp.testing.tiny``) whose head always
answers its second label (weights zero, biases 0 and 4), named as checkpoints name them:
NEGATIVE/POSITIVE (the SST-2 DistilBERT) or LABEL_0/LABEL_1 (a head without names)."""

import json
from pathlib import Path

import pytest
import torch

from nlpapp import labels
from nlpapp.configs import CompareConfig, EvalConfig
from nlpapp.errors import NlpappError
from nlpapp.training.config import TrainConfig

BIAS = [0.0, 4.0]  # the head's logits for every text: it always predicts its second label
DEV = [("a good film", "positive"), ("nice", "positive"), ("a fine book", "positive"), ("awful", "negative")]
ACCURACY = 75.0  # always "positive" (once mapped) on DEV


def classifier(folder: Path, names: list[str]) -> Path:
    """A tiny BERT classifier whose config names its labels ``names``."""
    from transformers import AutoModelForSequenceClassification

    from nlpapp.testing import tiny

    tiny.build("sequence-classification", folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(BIAS))
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sst2(tmp_path_factory) -> str:
    return str(classifier(tmp_path_factory.mktemp("sst2"), ["NEGATIVE", "POSITIVE"]))


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory) -> str:
    return str(classifier(tmp_path_factory.mktemp("unnamed"), ["LABEL_0", "LABEL_1"]))


@pytest.fixture
def dev(tmp_path) -> str:
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"id": n, "text": t, "label": lab}) + "\n" for n, (t, lab) in enumerate(DEV)))
    return str(path)


def one_line_error(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0]


# --- eval -------------------------------------------------------------------------------------

def test_sst2_style_labels_differing_in_case_fail_in_one_line(cli, sst2, dev):
    line = one_line_error(*cli("eval", "sentiment", "--data", dev, "-m", sst2)[::2])
    assert "NEGATIVE, POSITIVE" in line and "negative, positive" in line and "only in case" in line
    assert line.endswith("pass --label-map NEGATIVE=negative,POSITIVE=positive")


def test_with_the_label_map_the_accuracy_is_right_and_predictions_show_the_data_labels(cli, sst2, dev, tmp_path):
    out = tmp_path / "predictions.jsonl"
    code, stdout, err = cli("eval", "sentiment", "--data", dev, "-m", sst2, "--label-map",
                            "NEGATIVE=negative,POSITIVE=positive", "--bootstrap", "0", "--json", "-o", str(out))
    assert code == 0, err
    report = json.loads(stdout)
    assert report["scores"]["accuracy"]["value"] == ACCURACY
    assert report["confusion"] == {"positive": {"positive": 3}, "negative": {"positive": 1}}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prediction"] for r in rows] == ["positive"] * 4 and [r["id"] for r in rows] == [0, 1, 2, 3]


def test_label_0_label_1_fail_then_map(cli, unnamed, dev):
    line = one_line_error(*cli("eval", "sentiment", "--data", dev, "-m", unnamed)[::2])
    assert "LABEL_0, LABEL_1" in line and "negative, positive" in line and "none in common" in line
    assert "--label-map MODEL=DATA,..." in line
    code, stdout, err = cli("eval", "sentiment", "--data", dev, "-m", unnamed, "--label-map",
                            "LABEL_0=negative,LABEL_1=positive", "--bootstrap", "0", "--json")
    assert code == 0, err
    assert json.loads(stdout)["scores"]["accuracy"]["value"] == ACCURACY


def test_disjoint_labels_fail_before_any_example_is_predicted(runtime, sst2, tmp_path):
    data = tmp_path / "stars.jsonl"
    data.write_text('{"text": "great", "label": "5 stars"}\n{"text": "awful", "label": "1 star"}\n')
    fake = runtime.models.load("fake-classifier")  # labels negative, positive; it counts its calls
    with pytest.raises(NlpappError, match=r"predicts negative, positive but the data's labels are 1 star, 5 stars: "
                                          r"none in common"):
        runtime.evaluate(EvalConfig(task="sentiment", data=str(data), model="fake-classifier"))
    # a comparison checks both systems before either predicts
    with pytest.raises(NlpappError, match=f"model '{sst2}' predicts NEGATIVE, POSITIVE but"):
        runtime.compare(CompareConfig(task="sentiment", data=str(data), systems=["fake-classifier", sst2],
                                      label_map={"negative": "1 star", "positive": "5 stars"}))
    assert fake.calls == []


def test_a_data_label_the_model_never_predicts_is_one_warning(cli, sst2, tmp_path):
    data = tmp_path / "three.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                            for t, lab in DEV + [("so so", "neutral")]))
    code, stdout, err = cli("eval", "sentiment", "--data", str(data), "-m", sst2, "--bootstrap", "0", "--json",
                            "--label-map", "NEGATIVE=negative,POSITIVE=positive")
    assert code == 0, err
    assert err.strip() == ("nlpapp: warning: model '" + sst2 + "' never predicts the data's label neutral "
                           "(its labels: negative, positive); those examples are scored wrong")
    assert json.loads(stdout)["scores"]["accuracy"]["value"] == 60.0


def test_a_malformed_label_map_is_one_line(cli, sst2, dev):
    line = one_line_error(*cli("eval", "sentiment", "--data", dev, "-m", sst2, "--label-map", "NEGATIVE")[::2])
    assert line == "nlpapp: error: --label-map: 'NEGATIVE' is not MODEL=DATA; write --label-map MODEL=DATA,..."
    line = one_line_error(*cli("eval", "sentiment", "--data", dev, "-m", sst2, "--label-map", "A=x,A=y")[::2])
    assert "'A' is given twice" in line


def test_library_evaluate_and_compare_take_a_label_map(runtime, sst2, dev):
    with pytest.raises(NlpappError, match="only in case"):
        runtime.evaluate(EvalConfig(task="sentiment", data=dev, model=sst2, bootstrap=0))
    result = runtime.evaluate(EvalConfig(task="sentiment", data=dev, model=sst2, bootstrap=0,
                                         label_map={"NEGATIVE": "negative", "POSITIVE": "positive"}))
    assert result.scores["accuracy"].value == ACCURACY
    as_text = runtime.evaluate(EvalConfig(task="sentiment", data=dev, model=sst2, bootstrap=0,
                                          label_map="NEGATIVE=negative,POSITIVE=positive"))
    assert as_text.scores["accuracy"].value == ACCURACY
    # one map for both systems: the fake classifier's labels are the data's already, and the map leaves them be
    compared = runtime.compare(CompareConfig(task="sentiment", data=dev, bootstrap=10, systems=[sst2, "fake-classifier"],
                                             label_map={"NEGATIVE": "negative", "POSITIVE": "positive"}))
    assert compared.systems[0].scores["accuracy"].value == ACCURACY


def test_a_zero_shot_encoder_has_no_labels_to_check(runtime, tiny_model, tmp_path):
    data = tmp_path / "topics.jsonl"
    data.write_text('{"text": "oil prices fell", "label": "crude"}\n{"text": "shares rose", "label": "acq"}\n')
    result = runtime.evaluate(EvalConfig(task="sentiment", data=str(data), model=str(tiny_model("encoder")),
                                         bootstrap=0, options={"labels": "crude,acq"}))
    assert result.examples == 2


# --- task files -------------------------------------------------------------------------------

def test_a_task_file_label_map_is_used_by_eval(cli, sst2, dev, tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "sst2.yaml").write_text(f"kind: text-classification\nmodel: {sst2}\ndata:\n  eval: {dev}\n"
                                      "label_map:\n  NEGATIVE: negative\n  POSITIVE: positive\n")
    (folder / "broken.yaml").write_text("kind: text-classification\nlabel_map: NEGATIVE\n")
    monkeypatch.setenv("NLPAPP_TASKS", str(folder))
    code, stdout, err = cli("eval", "sst2", "--bootstrap", "0", "--json")
    assert code == 0, err
    assert json.loads(stdout)["scores"]["accuracy"]["value"] == ACCURACY
    line = one_line_error(*cli("eval", "sst2", "--label-map", "POSITIVE=negative")[::2])  # the command line wins
    assert "only in case" in line  # NEGATIVE is left as it is, and matches negative only by case
    line = one_line_error(*cli("eval", "broken", "--data", dev)[::2])
    assert "broken.yaml: label_map: 'NEGATIVE' is not MODEL=DATA" in line


# --- train ------------------------------------------------------------------------------------

@pytest.fixture
def train_data(tmp_path) -> str:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in DEV * 2))
    return str(path)


def test_train_refuses_a_trained_head_whose_labels_differ(cli, sst2, train_data, dev, tmp_path):
    out = tmp_path / "adapter"
    line = one_line_error(*cli("train", "sentiment", "-m", sst2, "--data", train_data, "--eval-data", dev, "-o",
                               str(out), "--max-steps", "1", "--no-progress")[::2])
    assert line.endswith("only in case; pass --label-map NEGATIVE=negative,POSITIVE=positive")
    assert not out.exists()


def test_train_with_a_label_map_keeps_and_fine_tunes_the_models_head(runtime, sst2, train_data, dev, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "adapter"
    result = runtime.train(TrainConfig(task="sentiment", model=sst2, data=[train_data], eval_data=[dev],
                                       output=str(out), max_steps=1,
                                       batch_size=4, lr=1e-6, save_every=0,
                                       label_map={"NEGATIVE": "negative", "POSITIVE": "positive"}))
    assert result.manifest["labels"] == ["negative", "positive"]  # the head's outputs, under the data's names
    saved = load_file(out / "adapter_model.safetensors")
    [bias] = [v for k, v in saved.items() if k.endswith("classifier.bias")]
    assert bias.tolist() == pytest.approx(BIAS, abs=0.1)  # the model's head, one small step on; a new one has 0, 0
    scored = runtime.evaluate(EvalConfig(task="sentiment", data=dev, adapter=str(out), bootstrap=0))
    assert scored.scores["accuracy"].value == ACCURACY  # no map needed any more


def test_train_from_a_task_file_takes_its_label_map(cli, sst2, train_data, dev, tmp_path, monkeypatch):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "sst2.yaml").write_text(f"kind: text-classification\nmodel: {sst2}\n"
                                      f"data:\n  train: {train_data}\n  eval: {dev}\n"
                                      "label_map: NEGATIVE=negative,POSITIVE=positive\n")
    monkeypatch.setenv("NLPAPP_TASKS", str(folder))
    code, stdout, err = cli("train", "sst2", "-o", str(tmp_path / "a"), "--max-steps", "1", "--batch-size", "4",
                            "--save-every", "0", "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(stdout)["labels"] == ["negative", "positive"]


# --- the rules --------------------------------------------------------------------------------

def test_a_trained_head_keeps_its_ids_and_needs_an_output_for_every_data_label():
    # the model's order, not the sorted one: a head whose first output is POSITIVE keeps it first
    assert labels.training_ids(["negative", "positive"], ["POSITIVE", "NEGATIVE"],
                               {"POSITIVE": "positive", "NEGATIVE": "negative"}, "m") == {"positive": 0, "negative": 1}
    assert labels.training_ids(["negative", "positive"], [], {}, "m") == {"negative": 0, "positive": 1}  # a new head
    assert labels.training_ids(["neg"], ["neg", "pos"], {}, "m") == {"neg": 0, "pos": 1}  # a subset is fine
    with pytest.raises(NlpappError, match="the data has label neutral, for which the trained head of model 'm' has "
                                          "no output"):
        labels.training_ids(["negative", "neutral"], ["negative", "positive"], {}, "m")
    with pytest.raises(NlpappError, match="gives A and B of model 'm' the same label 'x'"):
        labels.training_ids(["x", "y"], ["A", "B", "y"], {"A": "x", "B": "x"}, "m")


def test_check_suggests_the_exact_map_when_only_case_differs():
    with pytest.raises(NlpappError) as caught:
        labels.check(["negative", "POSITIVE"], {"negative", "positive"}, {}, "m")
    assert str(caught.value).endswith("pass --label-map POSITIVE=positive")
    labels.check(["negative", "POSITIVE"], {"negative", "positive"}, {"POSITIVE": "positive"}, "m")
    assert labels.parse_map({"LABEL_0": "neg", 1: "pos"}) == {"LABEL_0": "neg", "1": "pos"}
