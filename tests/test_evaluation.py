"""Metrics equal the reference libraries to the last digit; SQuAD follows the official
definitions on tricky cases; bootstrap intervals and paired tests behave."""

import json
from pathlib import Path

import pytest

from nlpapp.evaluation import bootstrap, metrics

HYPS = ["The cat sat on the mat.", "Oil prices fell sharply on Monday.", "Acme was founded by Jane Roe.",
        "It is raining in Paris today.", "Shares rose after the earnings report."]
REFS = ["The cat is sitting on the mat.", "Oil prices dropped sharply on Monday.", "Jane Roe founded Acme.",
        "Today it rains in Paris.", "Shares climbed after strong quarterly earnings."]


def test_bleu_chrf_ter_equal_sacrebleu():
    import sacrebleu

    refs = [[r] for r in REFS]
    assert metrics.bleu(HYPS, refs).scores["bleu"] == sacrebleu.corpus_bleu(HYPS, [REFS]).score
    assert metrics.chrf(HYPS, refs).scores["chrf"] == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert metrics.ter(HYPS, refs).scores["ter"] == sacrebleu.corpus_ter(HYPS, [REFS]).score
    assert metrics.bleu(HYPS, refs).signature.startswith("bleu:nrefs:1|case:mixed|eff:no|tok:13a")


def test_bleu_with_two_references_equals_sacrebleu():
    import sacrebleu

    second = [r.lower() for r in REFS]
    got = metrics.bleu(HYPS, [[a, b] for a, b in zip(REFS, second)]).scores["bleu"]
    assert got == sacrebleu.corpus_bleu(HYPS, [REFS, second]).score


def test_resampling_the_whole_set_gives_the_corpus_score():
    result = metrics.bleu(HYPS, [[r] for r in REFS])
    assert result.resample(range(len(HYPS)))["bleu"] == pytest.approx(result.scores["bleu"], abs=1e-9)


def test_rouge_equals_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    direct = [scorer.score(r, h) for h, r in zip(HYPS, REFS)]
    got = metrics.rouge(HYPS, [[r] for r in REFS])
    for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert got.scores[t] == 100 * sum(d[t].fmeasure for d in direct) / len(direct)
    assert "stem=yes" in got.signature and "tok=default" in got.signature
    assert "lsum_split=pysbd-" in got.signature


@pytest.mark.parametrize("prediction,golds,em,f1", [
    ("the Jane Roe", ["Jane Roe"], 100.0, 100.0),  # articles dropped
    ("Jane Roe.", ["jane roe"], 100.0, 100.0),  # punctuation and case
    ("  Jane   Roe ", ["Jane Roe"], 100.0, 100.0),  # whitespace
    ("Roe", ["Jane Roe"], 0.0, 100 * 2 * (1 * 0.5) / 1.5),  # precision 1, recall 1/2
    ("Jane Doe", ["John Smith", "Jane Roe"], 0.0, 50.0),  # best over golds
    ("in 1990", ["1990", "in 1990 in Ohio"], 0.0, 200 / 3),  # "in" is no article
    ("a", ["the"], 100.0, 0.0),  # both normalise to empty: exact, but no tokens for F1
])
def test_squad_exact_match_and_f1_follow_the_official_script(prediction, golds, em, f1):
    result = metrics.squad([prediction], [golds])
    assert result.scores["exact_match"] == em
    assert result.scores["f1"] == pytest.approx(f1)


def test_classification_accuracy_and_macro_f1():
    predictions = ["pos", "pos", "neg", "neg", "pos"]
    gold = [["pos"], ["neg"], ["neg"], ["neg"], ["pos"]]
    result = metrics.classification(predictions, gold)
    assert result.scores["accuracy"] == 80.0
    # pos: tp 2, fp 1, fn 0 -> 0.8; neg: tp 2, fp 0, fn 1 -> 0.8
    assert result.scores["macro_f1"] == pytest.approx(80.0)
    assert metrics.confusion(predictions, [g[0] for g in gold]) == {"pos": {"pos": 2}, "neg": {"pos": 1, "neg": 2}}


def test_a_resample_missing_a_class_averages_over_the_classes_it_has():
    result = metrics.classification(["acq", "acq", "crude"], [["acq"], ["acq"], ["crude"]])
    assert result.resample([0, 1, 0])["macro_f1"] == 100.0  # no crude drawn: not a crude F1 of 0
    assert result.resample([0, 2, 2])["macro_f1"] == 100.0


def test_bootstrap_interval_contains_the_estimate_and_is_repeatable():
    result = metrics.rouge(HYPS * 4, [[r] for r in REFS * 4])
    cis = bootstrap.intervals(result.resample, len(HYPS) * 4, rounds=200, seed=1)
    low, high = cis["rougeL"]
    assert low <= result.scores["rougeL"] <= high and low < high
    assert cis == bootstrap.intervals(result.resample, len(HYPS) * 4, rounds=200, seed=1)


def test_paired_bootstrap_separates_a_better_system():
    gold = [["pos"], ["neg"]] * 20
    good = metrics.classification(["pos", "neg"] * 20, gold)
    coin = metrics.classification(["pos", "pos"] * 20, gold)
    p = bootstrap.paired_p_values(good.resample, coin.resample, 40, rounds=200)
    assert p["accuracy"] < 0.01
    same = bootstrap.paired_p_values(good.resample, good.resample, 40, rounds=200)
    assert same["accuracy"] == 1.0


# --- nlpapp eval through the CLI, on the fake models ------------------------------------------

def test_eval_sentiment_csv(cli, tmp_path):
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\ngreat film,positive\nawful film,negative\nboring and bad,negative\ngood,negative\n")
    code, out, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--json", "--bootstrap", "50")
    assert code == 0, err
    report = json.loads(out)
    assert report["scores"]["accuracy"]["value"] == 75.0
    assert report["confusion"] == {"negative": {"negative": 2, "positive": 1}, "positive": {"positive": 1}}
    code, out, _ = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--bootstrap", "50")
    assert "accuracy" in out and "95% interval" in out


def test_eval_translation_equals_sacrebleu_on_model_output(cli, tmp_path):
    import sacrebleu

    rows = [{"text": h, "translation": r} for h, r in zip(HYPS, REFS)]
    data = tmp_path / "mt.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli("eval", "translation", "--data", str(data), "-m", "fake-seq2seq", "--target-lang", "fr",
                         "--json", "--bootstrap", "20")
    assert code == 0, err
    report = json.loads(out)
    predictions = [p["prediction"] for p in report["predictions"]]
    assert report["scores"]["bleu"]["value"] == sacrebleu.corpus_bleu(predictions, [REFS]).score
    assert report["scores"]["ter"]["higher_is_better"] is False


def test_eval_compare_two_systems(cli, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": "Who founded Acme?", "context": "Acme was founded by Jane Roe.",
                                        "answer": ["Jane", "Jane Roe"]}) + "\n" for _ in range(6)))
    code, out, err = cli("eval", "qa", "--data", str(data), "--compare", "fake-qa,fake-causal", "--json",
                         "--bootstrap", "50")
    assert code == 0, err
    report = json.loads(out)
    assert [s["system"] for s in report["systems"]] == ["fake-qa", "fake-causal"]
    assert report["systems"][0]["scores"]["exact_match"]["value"] == 100.0
    assert report["paired_p_values"]["exact_match"] < 0.05
    # its report: both systems in the table, and the p-values
    markdown = (Path(report["report"]).parent / "report.md").read_text()
    assert "| fake-qa | exact_match | 100 |" in markdown and "| fake-causal | exact_match |" in markdown
    assert f"- exact_match: p = {report['paired_p_values']['exact_match']:.4f}" in markdown
    assert (Path(report["report"]).parent / "chart.png").is_file()


def test_eval_errors(cli, tmp_path):
    data = tmp_path / "x.jsonl"
    data.write_text('{"text": "hi"}\n')
    code, _, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier")
    assert code == 1 and "missing target field 'label' in every record" in err and "--target-column" in err
    code, _, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--metric", "bleuu")
    assert code == 1 and "unknown metric 'bleuu'; did you mean 'bleu'" in err


def test_eval_perplexity_on_raw_text(cli, tiny_model, tmp_path):
    text = tmp_path / "heldout.txt"
    text.write_text("the weather is nice today and the sun is shining. " * 30)
    code, out, err = cli("eval", "generation", "--data", str(text), "-m", str(tiny_model("causal-lm")),
                         "--metric", "perplexity", "--json")
    assert code == 0, err
    value = json.loads(out)["scores"]["perplexity"]["value"]
    assert 1 < value < 1000  # a random tiny model: high, but finite


def test_the_core_metrics_need_no_task_plugin_but_the_task_s_own(cli, tmp_path, monkeypatch):
    """rouge is the core's: with every task plugin but generation disabled, eval still scores it."""
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n"
                            for p, r in [("one two three", "three two one"), ("a b", "b a"), ("x y z", "z y")]))
    monkeypatch.setenv("NLPAPP_LOAD_PLUGINS", "generation,nlpapp-fake-models")
    code, out, err = cli("plugins", "--json")
    assert {p["name"] for p in json.loads(out) if p["status"] == "loaded"} == {"generation", "nlpapp-fake-models"}
    for name in ("text-generation", "generation"):
        code, out, err = cli("eval", name, "--data", str(data), "-m", "fake-causal", "--json", "--bootstrap", "10")
        assert code == 0, err
        scores = json.loads(out)["scores"]
        assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(scores)
        assert scores["rougeL"]["metric"] == "rouge" and scores["rougeL"]["value"] > 0
