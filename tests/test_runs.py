"""Run records: written for run, train and eval; failures marked; list, show and diff."""

import json


def _runs(cli):
    code, out, _ = cli("runs", "list", "--json")
    assert code == 0
    return json.loads(out)


def test_eval_records_config_versions_scores_and_predictions(cli, tmp_path, nlpapp_home):
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\ngreat film,positive\nawful film,negative\n")
    code, out, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--bootstrap", "20",
                         "--json")
    assert code == 0, err
    [record] = _runs(cli)
    assert record["id"] == json.loads(out)["run"]
    # recorded under the task's registered name, whichever name the command used
    assert (record["kind"], record["task"], record["status"]) == ("eval", "text-classification", "succeeded")
    assert record["metrics"]["accuracy"]["value"] == 100.0
    assert record["metrics"]["accuracy"]["signature"].startswith("classification:labels=negative+positive")
    assert set(record["versions"]) == {"nlpapp", "torch", "transformers", "peft"}
    assert list(record["data"]) == [str(data)] and len(record["data"][str(data)]) == 16
    predictions = (nlpapp_home / "runs" / record["id"] / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(p)["prediction"] for p in predictions] == ["positive", "negative"]


def test_a_failed_run_is_marked_failed(cli, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n{broken\n')
    code, _, _ = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier")
    assert code == 1
    [record] = _runs(cli)
    assert record["status"] == "failed" and "malformed JSON" in record["error"]


def test_run_and_train_write_records(cli, tiny_model, tmp_path):
    code, _, _ = cli("run", "sentiment", "-m", "fake-classifier", "great", "awful")
    assert code == 0
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a b", "response": "c"}\n' * 4)
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(data),
                       "--output", str(tmp_path / "a"), "--epochs", "1", "--batch-size", "2", "--no-progress")
    assert code == 0, err
    run, train = _runs(cli)
    assert (run["kind"], run["outputs"], run["status"]) == ("run", 2, "succeeded")
    assert run["model"]["spec"] == "fake-classifier"
    assert (train["kind"], train["metrics"]["steps"]) == ("train", 2)
    assert train["adapter"]["output"] == str(tmp_path / "a")


def test_diff_explains_which_inputs_differ(cli, tmp_path):
    data = tmp_path / "mt.jsonl"
    data.write_text("".join(json.dumps({"text": f"a b c d {i}", "translation": "D C B A"}) + "\n" for i in range(3)))
    for tokens in ("50", "2"):
        code, _, err = cli("eval", "translation", "--data", str(data), "-m", "fake-seq2seq", "--target-lang", "fr",
                           "--max-new-tokens", tokens, "--bootstrap", "0")
        assert code == 0, err
    a, b = (r["id"] for r in _runs(cli))
    code, out, _ = cli("runs", "diff", a, b, "--json")
    report = json.loads(out)
    assert report["inputs"] == {"config.options.max_new_tokens": [50, 2]}
    assert report["scores"]["chrf"]["difference"] < 0
    code, out, _ = cli("runs", "diff", a, b)
    assert "config.options.max_new_tokens: 50 -> 2" in out


def test_diff_refuses_to_subtract_scores_with_different_signatures(cli, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("text,label\ngreat,positive\nawful,negative\n")
    second.write_text("text,label\ngreat,good\nawful,bad\n")
    for data, mapped in ((first, ()), (second, ("--label-map", "negative=bad,positive=good"))):
        assert cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--bootstrap", "0", *mapped)[0] == 0
    a, b = (r["id"] for r in _runs(cli))
    code, out, _ = cli("runs", "diff", a, b, "--json")
    assert "signatures differ" in json.loads(out)["scores"]["accuracy"]["not_comparable"]


def test_unknown_run(cli):
    code, _, err = cli("runs", "show", "nope")
    assert code == 1 and "unknown run 'nope'" in err


def test_an_unwritable_cache_costs_a_warning_not_the_run(cli, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NLPAPP_HOME", str(blocker))  # a file where the cache folder should be
    code, out, err = cli("run", "sentiment", "-m", "fake-classifier", "great")
    assert code == 0 and out.startswith("positive")
    assert "cannot write the run record" in err


def test_list_shows_what_an_eval_used_under_a_header(cli, tmp_path):
    data = tmp_path / "reviews" / "labelled.csv"
    data.parent.mkdir()
    data.write_text("text,label\ngreat film,positive\nawful film,negative\n")
    code, _, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--bootstrap", "0")
    assert code == 0, err
    code, out, err = cli("runs", "list")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split()[:8] == ["ID", "KIND", "TASK", "STATUS", "SECONDS", "MODEL", "ADAPTER", "DATA"]
    assert row.split()[1:4] == ["eval", "text-classification", "succeeded"]
    assert row.split()[5:8] == ["fake-classifier", "-", "labelled.csv"]
