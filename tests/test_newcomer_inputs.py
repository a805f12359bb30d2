"""Issue 11 part 9, as a newcomer meets it with Reuters-style files (``id``, ``title``,
``body``): a column named otherwise is reported once with the way to map it, and the
input's other columns (its ``id``) come through to every output."""

import json

import pytest

ARTICLES = [{"id": f"reuters-{n:03d}", "title": f"HEADLINE {n}", "body": f"word {'w ' * n}end{n}"} for n in range(1, 5)]


@pytest.fixture
def articles(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in ARTICLES))
    return path


def _error_line(code, err):
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0]


# --- 1. a column named otherwise: once for the file, with its columns and the option -------------

def test_run_names_the_file_columns_and_the_option_once(cli, articles):
    code, out, err = cli("run", "summarization", "-m", "fake-seq2seq", "--input", str(articles))
    line = _error_line(code, err)
    assert line == (f"nlpapp: error: {articles}: missing field 'text' in every record (task 'summarization'); "
                    "its fields are: id, title, body; map a column with --text-column COLUMN")
    assert out == ""


def test_eval_names_the_missing_input_and_reference_together(cli, articles):
    code, _, err = cli("eval", "summarization", "-m", "fake-seq2seq", "--data", str(articles))
    line = _error_line(code, err)
    assert "missing field 'text' and target field 'summary' in every record" in line
    assert "its fields are: id, title, body" in line
    assert line.endswith("map columns with --text-column COLUMN --target-column COLUMN")
    code, _, err = cli("eval", "summarization", "-m", "fake-seq2seq", "--data", str(articles), "--text-column", "body")
    assert _error_line(code, err).endswith(
        "missing target field 'summary' in every record (task 'summarization'); its fields are: id, title, body; "
        "map a column with --target-column COLUMN")


def test_train_names_the_missing_input_and_target_together(cli, articles, tiny_model, tmp_path):
    code, _, err = cli("train", "summarization", "-m", str(tiny_model("causal-lm")), "--data", str(articles),
                       "--output", str(tmp_path / "headlines"), "--no-progress")
    line = _error_line(code, err)
    assert "missing field 'text' and target field 'summary' in every record" in line
    assert "its fields are: id, title, body" in line and "--text-column COLUMN --target-column COLUMN" in line
    assert not (tmp_path / "headlines").exists()


def test_other_input_fields_map_with_columns(cli, articles):
    code, _, err = cli("run", "qa", "-m", "fake-qa", "--input", str(articles))
    assert _error_line(code, err).endswith("map columns with --text-column COLUMN --columns context=COLUMN")


def test_a_few_bad_lines_are_still_listed_one_by_one(cli, tmp_path):
    data = tmp_path / "mixed.jsonl"
    data.write_text('{"text": "fine"}\n{"body": "no text"}\n{"text": "good"}\n')
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert code == 1 and err.strip() == f"nlpapp: error: {data}:2: missing field 'text' for task 'text-classification'"


# --- 3. the input's other columns pass through ----------------------------------------------------

def test_run_output_and_json_keep_the_id(cli, articles, tmp_path):
    target = tmp_path / "out.jsonl"
    code, _, err = cli("run", "summarization", "-m", "fake-seq2seq", "--input", str(articles), "--text-column", "body",
                       "--output", str(target), "--batch-size", "3")
    assert code == 0, err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [a["id"] for a in ARTICLES]  # in input order, batching or not
    assert [r["title"] for r in rows] == [a["title"] for a in ARTICLES]
    assert list(rows[0])[:2] == ["id", "title"] and "body" not in rows[0]  # body became the task's text
    assert [r["text"] for r in rows] == [a["body"] for a in ARTICLES]
    code, out, err = cli("run", "summarization", "-m", "fake-seq2seq", "--input", str(articles), "--text-column", "body",
                         "--json")
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [a["id"] for a in ARTICLES]


def test_a_column_named_like_an_output_field_does_not_overwrite_it(cli, tmp_path):
    data = tmp_path / "labelled.csv"
    data.write_text("id,text,label\n7,I loved it,negative\n")
    code, out, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data), "--json")
    assert code == 0, err
    row = json.loads(out)
    assert (row["id"], row["label"], row["input_label"]) == ("7", "positive", "negative")


def test_eval_predictions_keep_the_id(cli, articles, nlpapp_home, tmp_path):
    code, out, err = cli("eval", "summarization", "-m", "fake-seq2seq", "--data", str(articles), "--json",
                         "--columns", "text=body,summary=title", "--bootstrap", "0")
    assert code == 0, err
    report = json.loads(out)
    assert [p["id"] for p in report["predictions"]] == [a["id"] for a in ARTICLES]
    # body, title: the task's; input: the start of the body, for reports
    assert set(report["predictions"][0]) == {"id", "input", "prediction", "references"}
    saved = [json.loads(line) for line in (nlpapp_home / "runs" / report["run"] / "predictions.jsonl")
             .read_text().splitlines()]
    assert saved == report["predictions"]
