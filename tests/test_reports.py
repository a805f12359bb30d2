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
    assert out.startswith(f"# eval sentiment — run {run_id}") and (folder / "report.md").is_file()
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
