"""Each eval and train run writes report.html (self-contained) and report.md with the metric
table, intervals, signatures and a chart."""

import json
import re

from nlpapp import runs


def run_folder(report_path: str):
    from pathlib import Path

    folder = Path(report_path).parent
    return folder, json.loads((folder / "run.json").read_text())


def eval_sentiment(cli, tmp_path, csv_rows: str, rounds: str) -> dict:
    """``nlpapp eval sentiment --json`` with the fake classifier on a small CSV."""
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\n" + csv_rows)
    code, out, err = cli("eval", "sentiment", "--data", str(data), "-m", "fake-classifier", "--json",
                         "--bootstrap", rounds)
    assert code == 0, err
    return json.loads(out)


def test_eval_report_has_the_scores_intervals_and_an_embedded_chart(cli, tmp_path):
    report = eval_sentiment(cli, tmp_path, "great film,positive\nawful film,negative\nboring and bad,negative\n"
                                           "good,negative\n", "50")
    folder, record = run_folder(report["report"])
    html = (folder / "report.html").read_text()
    markdown = (folder / "report.md").read_text()
    accuracy = record["metrics"]["accuracy"]
    low, high = accuracy["ci95"]
    assert f"| accuracy | {accuracy['value']:.4g} | [{low:.2f}, {high:.2f}] |" in markdown
    assert f"`{accuracy['signature']}`" in markdown and "![chart](chart.png)" in markdown
    assert (folder / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: the chart is inline and nothing is fetched from elsewhere
    assert "data:image/png;base64," in html
    assert not re.search(r"(src|href)=['\"](?!data:)", html)
    assert "<td>accuracy</td>" in html and f"[{low:.2f}, {high:.2f}]" in html


def test_train_report_shows_the_loss_curve(cli, tiny_model, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "say hi", "response": "hi there"}\n' * 8)
    code, out, err = cli("train", "generation", "--data", str(data), "-m", str(tiny_model("causal-lm")),
                         "--output", str(tmp_path / "adapter"), "--epochs", "1", "--batch-size", "4",
                         "--no-progress", "--json")
    assert code == 0, err
    result = json.loads(out)
    folder, record = run_folder(result["report"])
    markdown = (folder / "report.md").read_text()
    assert f"| final_loss | {record['metrics']['final_loss']:.4g} | - |" in markdown
    assert (folder / "chart.png").is_file() and "data:image/png;base64," in (folder / "report.html").read_text()


def test_runs_report_rewrites_and_prints(cli, tmp_path):
    run_id = eval_sentiment(cli, tmp_path, "great,positive\nawful,negative\n", "10")["run"]
    folder = runs.runs_dir() / run_id
    (folder / "report.md").unlink()
    code, out, err = cli("runs", "report", run_id, "--markdown")
    assert code == 0, err
    assert out.startswith(f"# eval text-classification — run {run_id}") and (folder / "report.md").is_file()
    code, _, err = cli("runs", "report", "no-such-run")
    assert code == 1 and "unknown run 'no-such-run'" in err


def test_a_failed_run_writes_no_report(cli, tmp_path):
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\ngreat,positive\n")
    code, _, _ = cli("eval", "sentiment", "--data", str(data), "-m", "no-such-model")
    assert code == 1
    (record,) = runs.all_runs()
    assert record["status"] == "failed"
    assert not (runs.runs_dir() / record["id"] / "report.html").exists()


def png_width(path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width


PAGE_PIXELS = 960  # the HTML page's 60em at 16px


def test_a_wide_comparison_chart_fits_the_page(nlpapp_home):
    names = ["bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "rougeLsum", "exact_match"]
    systems = ("base", "/home/someone/adapters/reuters-headlines-v2")
    with runs.recording("eval", "summarization", {"compare": ",".join(systems)}, []) as record:
        record.metrics = {f"{s}:{n}": {"value": 30.0 + i, "ci95": [25.0 + i, 35.0 + i], "signature": "rouge:v1",
                                       "metric": "rouge"} for s in systems for i, n in enumerate(names)}
        record.extra = {"examples": 3, "paired_p_values": {n: 0.04 for n in names}}
    assert png_width(record.folder / "chart.png") <= PAGE_PIXELS
    html = record.report.read_text()
    assert "img{max-width:100%;height:auto}" in html  # and a narrower window scales it down


def test_an_eval_report_shows_example_predictions_and_the_confusion_matrix(cli, tmp_path):
    long_review = "a long review that goes on " * 20
    report = eval_sentiment(cli, tmp_path, f"great film,positive\nawful film,negative\n{long_review},negative\n"
                                           "good,negative\nfine,positive\nbad,positive\nlovely,positive\n", "0")
    folder, record = run_folder(report["report"])
    markdown = (folder / "report.md").read_text()
    html = (folder / "report.html").read_text()
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    examples = markdown.split("## Examples\n")[1].split("\n## ")[0]
    assert "The first 5 of 7 predictions (all are in predictions.jsonl):" in examples
    rows = [line for line in examples.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 5
    for row, p in zip(rows, predictions[:5]):  # the start of the input, the prediction, the reference
        assert row.startswith(f"| {p['input'][:10]}") and row.endswith(f"| {p['prediction']} | {p['references'][0]} |")
    assert len(predictions[2]["input"]) == 200  # the long review, cut
    assert "<h2>Examples</h2>" in html
    # the confusion matrix nlpapp eval prints: gold label -> predicted label -> count
    gold_negative = report["confusion"]["negative"]
    assert "## Confusion matrix" in markdown and "<h2>Confusion matrix</h2>" in html
    assert (f"| negative | {gold_negative.get('negative', 0)} | {gold_negative.get('positive', 0)} |"
            in markdown)


def test_example_inputs_are_cut_and_a_stored_confusion_matrix_is_shown(nlpapp_home):
    with runs.recording("eval", "sentiment", {}, []) as record:
        record.metrics = {"f1": {"value": 0.5, "ci95": None, "signature": "f1:v1", "metric": "f1"}}
        record.extra = {"examples": 2, "confusion": {"pos": {"pos": 1}, "neg": {"pos": 1}}}
        record.save_predictions([{"input": "line one\nline | two " + "x" * 500, "prediction": "pos",
                                  "references": ["neg", "negative"]},
                                 {"input": "short", "prediction": "pos", "references": ["pos"]}])
    markdown = (record.folder / "report.md").read_text()
    assert "All 2 predictions:" in markdown and "| input | prediction | reference |" in markdown
    cut = "line one line \\| two " + "x" * (199 - len("line one line | two ")) + "…"
    assert f"| {cut} | pos | neg (+1 more) |" in markdown
    assert "| short | pos | pos |" in markdown
    assert "| neg | 0 | 1 |" in markdown and "| pos | 0 | 1 |" in markdown
    assert "<th>gold \\ predicted</th><th>neg</th><th>pos</th>" in record.report.read_text()
