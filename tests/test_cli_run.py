"""``nlpapp run`` end to end with the deterministic fake models (registered by a plugin)."""

import json

import pytest


def test_generation_from_arguments(cli):
    code, out, err = cli("run", "generation", "-m", "fake-causal", "one two three", "--raw")
    assert code == 0, err
    assert out == "three two one\n"  # a single prompt streams, then ends the line


def test_json_output_keeps_argument_order(cli):
    code, out, _ = cli("run", "generation", "-m", "fake-causal", "--json", "a b", "c d e", "f")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in rows] == ["a b", "c d e", "f"]
    assert [r["response"] for r in rows] == ["b a", "e d c", "f"]  # the training target's name


def test_max_new_tokens_and_seeded_sampling(cli):
    args = ("run", "generation", "-m", "fake-causal", "--json", "--temperature", "0.7", "--seed", "3")
    first = cli(*args, "a b c d e f")[1]
    assert first == cli(*args, "a b c d e f")[1]
    code, out, _ = cli("run", "generation", "-m", "fake-causal", "--max-new-tokens", "2", "a b c d")
    assert out.strip() == "d c"


def test_file_input_to_output_in_order_with_batching(cli, tmp_path):
    texts = [" ".join(["w"] * n) + f" end{n}" for n in (5, 1, 9, 3, 7, 2, 8)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(texts)))
    target = tmp_path / "out.jsonl"
    code, out, err = cli("run", "summarization", "-m", "fake-seq2seq", "-i", str(source), "-o", str(target),
                         "--text-column", "body", "--batch-size", "3")
    assert code == 0, err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    assert rows[0]["summary"].startswith("END5")
    assert "wrote 7 predictions" in err


@pytest.mark.parametrize("suffix,content", [
    (".csv", "text,other\nI loved it,1\nawful and boring,2\n"),
    (".tsv", "text\tother\nI loved it\t1\nawful and boring\t2\n"),
    (".txt", "I loved it\n\nawful and boring\n"),
])
def test_csv_tsv_and_text_inputs(cli, tmp_path, suffix, content):
    source = tmp_path / f"in{suffix}"
    source.write_text(content)
    code, out, err = cli("run", "sentiment", "-m", "fake-classifier", "-i", str(source), "--json")
    assert code == 0, err
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["positive", "negative"]


def test_stdin_input(cli):
    code, out, _ = cli("run", "sentiment", "-m", "fake-classifier", stdin='{"text": "great"}\nbad\n')
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["positive", "negative"]


def test_qa_with_options_and_constant_context_for_a_file(cli, tmp_path):
    code, out, _ = cli("run", "qa", "-m", "fake-qa", "--json", "--question", "Who founded Acme?",
                       "--context", "Acme was founded by Jane Roe.")
    row = json.loads(out)
    assert (row["answer"], row["start"], row["end"]) == ("Jane", 20, 24)  # longest word not asked
    source = tmp_path / "q.jsonl"
    source.write_text('{"q": "Who is Roe?"}\n')
    code, out, err = cli("run", "qa", "-m", "fake-qa", "--json", "-i", str(source), "--columns", "question=q",
                         "--context", "Jane Roe lives in Ohio.")
    assert code == 0, err
    assert json.loads(out)["answer"] == "lives"


# --- user errors: one line, non-zero exit, no traceback -------------------------------

def _one_line_error(code, err):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0]


def test_unknown_task_suggests(cli):
    code, _, err = cli("run", "sentimnt", "x")
    assert "did you mean 'sentiment'" in _one_line_error(code, err)  # an old name is suggested too
    code, _, err = cli("run", "text-clasification", "x")
    assert "did you mean 'text-classification'" in _one_line_error(code, err)


def test_missing_input_file(cli, tmp_path):
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "-i", str(tmp_path / "nope.jsonl"))
    assert "nope.jsonl does not exist" in _one_line_error(code, err)


def test_malformed_jsonl_names_the_line(cli, tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "fine"}\n{"text": broken\n')
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "-i", str(source), "-o", str(tmp_path / "o.jsonl"))
    assert f"{source}:2: malformed JSON" in _one_line_error(code, err)
    assert not (tmp_path / "o.jsonl").exists()  # nothing half-written
    assert list(tmp_path.glob("*.partial")) == []


def test_missing_column(cli, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("body\nhello\n")
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "-i", str(source))
    assert "missing field 'text'" in _one_line_error(code, err)
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "-i", str(source), "--text-column", "txt")
    assert "no column 'txt'; the columns are: body" in _one_line_error(code, err)


def test_empty_text(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "   ")
    assert "field 'text' is empty" in _one_line_error(code, err)


def test_model_path_that_does_not_exist(cli, tmp_path):
    code, _, err = cli("run", "sentiment", "-m", str(tmp_path / "no-model"), "hi")
    assert "does not exist" in _one_line_error(code, err)


def test_misspelled_model_alias(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-clasifier", "hi")
    assert "did you mean 'fake-classifier'" in _one_line_error(code, err)


def test_a_model_whose_head_the_task_cannot_use(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-causal", "hi")
    line = _one_line_error(code, err)
    assert "cannot use model 'fake-causal' (its head: causal-lm)" in line
    assert "sequence-classification, encoder" in line


def test_no_input_at_all(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier")
    assert "no input" in _one_line_error(code, err)


def test_bad_generation_option(cli):
    code, _, err = cli("run", "generation", "-m", "fake-causal", "--top-p", "2", "x")
    assert _one_line_error(code, err) == "nlpapp: error: --top-p must be in (0, 1], got 2.0"


def test_unwritable_output(cli, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "hi", "-o", str(a_file / "o.jsonl"))
    assert "cannot write" in _one_line_error(code, err)


def test_listing_commands(cli):
    code, out, _ = cli("plugins", "--all", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["nlpapp-fake-models"]["registered"]["model"][0] == "fake-causal"
    assert rows["nlpapp.core"]["hooks"] == ["load_model", "register_backends", "register_heads", "register_lora_presets", "register_metrics"]
    assert rows["nlpapp.core"]["registered"]["metric"] == ["bleu", "chrf", "classification", "rouge", "squad", "ter"]
    assert "llama-attention" in rows["nlpapp.core"]["registered"]["LoRA preset"]
    code, out, _ = cli("models", "--json")
    models = {m["name"]: m for m in json.loads(out)}
    assert models["smollm2"]["default_for"] == ["summarization", "text-generation"]
    assert models["qwen-coder"]["license"].startswith("Apache-2.0")
