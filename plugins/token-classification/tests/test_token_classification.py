"""Token classification: word-aligned training labels, BIO spans with character offsets,
seqeval's numbers, and the whole path — a new head trained on an encoder, saved as an
adapter, used by run, eval, --compare and adapters — on a tiny real model."""

import json

import pytest

from nlpapp import IGNORE
from nlpapp import entities
from nlpapp_token_classification import seqeval_scores


def test_each_word_tags_its_first_piece_and_the_other_pieces_are_ignored(runtime, tiny_model):
    from nlpapp import TrainingContext

    task = runtime.task("ner")  # the alias
    assert task.name == "token-classification"
    model = runtime.models.load(str(tiny_model("encoder")))
    item, targets = task.make_example({"text": "Zqx founded Acme", "tags": "B-PER O B-ORG"})
    ctx = TrainingContext(model, "token-classification", 64, task.parse_options({}), {"B-PER": 0, "O": 1, "B-ORG": 2})
    [feature] = task.training_features(item, targets, ctx)
    pieces = model.tokenizer.convert_ids_to_tokens(feature["input_ids"])
    # "zqx" is not in the tiny vocabulary: it splits into pieces, and only the first is labelled
    assert pieces[:4] == ["[CLS]", "z", "##q", "##x"]
    assert feature["labels"][:4] == [IGNORE, 0, IGNORE, IGNORE]
    assert [label for label in feature["labels"] if label != IGNORE] == [0, 1, 2]
    assert feature["labels"][-1] == IGNORE  # [SEP]


def test_tags_become_entity_spans_with_character_offsets():
    text = "Jane  Roe met Acme Corp staff in New York ."
    words = [(m.group(), m.start(), m.end()) for m in __import__("re").finditer(r"\S+", text)]
    tags = ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "O", "B-LOC", "I-LOC", "O"]
    found = entities(text, words, tags, [0.5] * len(tags))
    assert [(e.label, e.text, e.start, e.end) for e in found] == [
        ("PER", "Jane  Roe", 0, 9), ("ORG", "Acme Corp", 14, 23), ("LOC", "New York", 33, 41)]
    assert all(text[e.start:e.end] == e.text for e in found)
    # an I- tag that does not continue its type starts a new entity (seqeval's default reading)
    found = entities(text, words, ["I-PER", "I-ORG"] + ["O"] * 8, [1.0] * 10)
    assert [(e.label, e.text) for e in found] == [("PER", "Jane"), ("ORG", "Roe")]


def test_the_metric_equals_seqeval():
    from seqeval.metrics import f1_score, precision_score, recall_score

    gold = ["B-PER I-PER O B-ORG", "O B-LOC O", "B-MISC O O", "O O O"]
    pred = ["B-PER I-PER O B-LOC", "O B-LOC O", "I-MISC O B-PER", "O O O"]
    result = seqeval_scores(pred, [[g] for g in gold])
    gold_tags, pred_tags = [g.split() for g in gold], [p.split() for p in pred]
    assert result.scores["precision"] == pytest.approx(100 * precision_score(gold_tags, pred_tags))
    assert result.scores["recall"] == pytest.approx(100 * recall_score(gold_tags, pred_tags))
    assert result.scores["f1"] == pytest.approx(100 * f1_score(gold_tags, pred_tags))
    assert result.resample([0, 1]) == pytest.approx(
        {"precision": 100 * precision_score(gold_tags[:2], pred_tags[:2]),
         "recall": 100 * recall_score(gold_tags[:2], pred_tags[:2]),
         "f1": 100 * f1_score(gold_tags[:2], pred_tags[:2])})


def test_a_tag_count_that_differs_from_the_word_count_is_one_clear_error(cli, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"text": "Acme Corp rose", "tags": "B-ORG I-ORG"}) + "\n")
    code, _, err = cli("eval", "ner", "--data", str(data), "-m", "fake-tagger")
    assert code == 1 and "2 tags for 3 words" in err and "Traceback" not in err


def test_run_tags_entities_with_the_fake_tagger(cli):
    code, out, _ = cli("run", "ner", "Shares of Acme Corp rose in Ohio", "-m", "fake-tagger", "--json")
    assert code == 0
    output = json.loads(out)
    assert output["tags"] == ["O", "O", "B-ENT", "I-ENT", "O", "O", "B-ENT"]
    assert [(e["text"], e["start"], e["end"]) for e in output["entities"]] == [("Acme Corp", 10, 19), ("Ohio", 28, 32)]


def test_a_bare_encoder_cannot_tag_until_an_adapter_gives_it_the_head(cli, tiny_model, tmp_path):
    """The whole path on a tiny real encoder: train a new head as an adapter, then run,
    eval, --compare base,ADAPTER and adapters list|show|merge all accept it."""
    encoder = str(tiny_model("encoder"))
    code, _, err = cli("run", "ner", "Acme rose", "-m", encoder)
    assert code == 1 and "cannot use model" in err and "train an adapter on it (nlpapp train token-classification)" in err

    rows = [{"text": "Acme founded the company in Ohio .", "tags": "B-ORG O O O O B-LOC O"},
            {"text": "Jane Roe loved the film .", "tags": "B-PER I-PER O O O O"}] * 4
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    adapter = tmp_path / "tagger"
    code, out, err = cli("train", "ner", "--data", str(data), "-m", encoder, "--output", str(adapter),
                         "--epochs", "2", "--batch-size", "4", "--lr", "5e-3", "--no-progress", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["head"] == "token-classification" and manifest["labels"] == ["B-LOC", "B-ORG", "B-PER", "I-PER", "O"]
    assert (adapter / "adapter_model.safetensors").is_file()

    code, _, err = cli("run", "sentiment", "--adapter", str(adapter), "great")
    assert code == 1 and f"adapter {adapter} was trained for task 'token-classification', not 'text-classification'" in err

    code, out, err = cli("run", "ner", "Acme founded the company in Ohio .", "--adapter", str(adapter), "--json")
    assert code == 0, err
    tags = json.loads(out)["tags"]
    assert len(tags) == 7 and set(tags) <= set(manifest["labels"])

    code, out, err = cli("eval", "ner", "--data", str(data), "--adapter", str(adapter), "--json", "--bootstrap", "50")
    assert code == 0, err
    scores = json.loads(out)["scores"]
    assert set(scores) == {"precision", "recall", "f1"} and scores["f1"]["ci95"] is not None

    code, out, err = cli("eval", "ner", "--data", str(data), "--compare", f"base,{adapter}", "--json",
                         "--bootstrap", "50")
    assert code == 0, err
    systems = {s["system"]: s["scores"]["f1"]["value"] for s in json.loads(out)["systems"]}
    assert set(systems) == {"base", str(adapter)}

    code, out, _ = cli("adapters", "list", "--json")
    assert code == 0 and any(a["name"] == "tagger" for a in json.loads(out))
    code, out, _ = cli("adapters", "show", "tagger", "--json")
    assert code == 0 and json.loads(out)["task"] == "token-classification"
    merged = tmp_path / "merged"
    code, out, err = cli("adapters", "merge", "tagger", "--output", str(merged), "--json")
    assert code == 0, err
    assert json.loads(out)["max_abs_diff"] < 1e-4
    code, out, err = cli("run", "ner", "Acme founded the company in Ohio .", "-m", str(merged), "--json")
    assert code == 0, err
    assert json.loads(out)["tags"] == tags  # the merged model is a NER checkpoint of its own, same answers
