"""``nlpapp train`` and ``nlpapp adapters`` through the CLI, on tiny local models."""

import json


def test_train_run_list_show_merge_rm(cli, tiny_model, tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\n" + "i loved this wonderful book,good\nawful boring film,bad\n" * 4)
    out = tmp_path / "adapters" / "topic"
    code, stdout, err = cli("train", "sentiment", "--model", str(tiny_model("encoder")), "--data", str(data),
                            "--text-column", "review", "--label-column", "stars", "--output", str(out),
                            "--epochs", "2", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    # 8 examples: 1 held out (said on stderr) to pick the checkpoint and measure it; 7 give 1 step an epoch
    assert "holding out 1 of 8 examples" in err
    assert stdout.startswith(f"wrote lora adapter to {out} (2 steps; final_loss ")
    assert stdout.splitlines()[1].startswith("adapter vs base on 1 held-out example: macro_f1 ")
    code, stdout, _ = cli("adapters", "list", "--json")
    [row] = json.loads(stdout)
    assert (row["name"], row["task"], row["kind"]) == ("topic", "text-classification", "lora")  # the new name
    code, stdout, _ = cli("run", "sentiment", "--adapter", "topic", "awful boring film", "--json")
    assert json.loads(stdout)["label"] in ("good", "bad")  # the adapter's labels, not positive/negative
    code, stdout, _ = cli("adapters", "show", "topic", "--json")
    assert json.loads(stdout)["labels"] == ["bad", "good"]
    for target in (out, out.parent):  # the adapter's own folder, or one holding it
        code, _, err = cli("adapters", "merge", "topic", "--output", str(target), "--overwrite")
        assert code == 1 and "would replace the adapter" in err and len(err.strip().splitlines()) == 1
    assert (out / "adapter_model.safetensors").is_file()
    code, stdout, err = cli("adapters", "merge", "topic", "--output", str(tmp_path / "merged"), "--json")
    assert code == 0, err
    assert json.loads(stdout)["max_abs_diff"] < 1e-4
    code, stdout, _ = cli("adapters", "rm", "topic", "-y")
    assert code == 0 and not out.exists()
    code, _, err = cli("adapters", "show", "topic")
    assert code == 1 and "unknown adapter 'topic'" in err


def test_an_adapter_from_before_the_task_rename_still_runs_and_compares(cli, tiny_model, tmp_path):
    """A manifest written when the task was called "sentiment" loads under either name."""
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "i loved this wonderful book", "label": "good"}\n'
                    '{"text": "awful boring film", "label": "bad"}\n' * 4)
    out = tmp_path / "old-adapter"
    code, _, err = cli("train", "text-classification", "-m", str(tiny_model("encoder")), "--data", str(data),
                       "--output", str(out), "--epochs", "1", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    manifest_path = out / "nlpapp-adapter.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["task"] = manifest["config"]["task"] = "sentiment"  # as nlpapp wrote it before the rename
    manifest_path.write_text(json.dumps(manifest))
    for name in ("sentiment", "text-classification"):
        code, stdout, err = cli("run", name, "--adapter", str(out), "awful boring film", "--json")
        assert code == 0, err
        assert json.loads(stdout)["label"] in ("good", "bad")
    code, stdout, err = cli("eval", "sentiment", "--data", str(data), "--compare", f"base,{out}", "--json",
                            "--bootstrap", "10")
    assert code == 0, err
    assert json.loads(stdout)["task"] == "text-classification"


def test_lm_objective_takes_files_as_arguments(cli, tiny_model, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(2):
        (corpus / f"book{n}.txt").write_text("the weather is nice today and the sun is shining. " * 20)
    code, stdout, err = cli("train", "generation", "--objective", "lm", "-m", str(tiny_model("causal-lm")),
                            *map(str, sorted(corpus.glob("*.txt"))), "--output", str(tmp_path / "lm"),
                            "--max-length", "16", "--batch-size", "4", "--epochs", "1", "--no-progress", "--json")
    assert code == 0, err
    manifest = json.loads(stdout)
    assert [f.rsplit("/", 1)[1] for f in manifest["data"]["files"]] == ["book0.txt", "book1.txt"]


def test_train_errors_are_one_line(cli, tiny_model, tmp_path):
    (tmp_path / "out").mkdir()
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(data),
                       "--output", str(tmp_path / "out"))
    assert code == 1 and err.strip() == (f"nlpapp: error: --output {tmp_path / 'out'} already exists; "
                                         "pass --overwrite to replace it")
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(data),
                       "--output", str(tmp_path / "new"), "--lr", "-1")
    assert code == 1 and "--lr must be positive" in err
    code, _, err = cli("train", "generation", "--output", str(tmp_path / "new"))
    assert code == 1 and "--data must be at least one file" in err


def test_a_config_file_sets_training_options_and_the_command_line_wins(cli, tiny_model, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n' * 4)
    config = tmp_path / "train.yaml"
    config.write_text(f"model: {tiny_model('causal-lm')}\ndata: {data}\nepochs: 1\nlr: 2e-3\nbatch_size: 2\n"
                      "save_every: 0\n")
    code, out, err = cli("train", "generation", "--config", str(config), "--output", str(tmp_path / "a"),
                         "--epochs", "2", "--no-progress", "--json")
    assert code == 0, err
    recorded = json.loads(out)["config"]
    assert (recorded["lr"], recorded["epochs"], recorded["batch_size"]) == (0.002, 2, 2)  # "2e-3" is YAML text
    config.write_text("epochs: ten\n")
    code, _, err = cli("train", "generation", "--config", str(config), "--output", str(tmp_path / "b"))
    assert (code, err.strip()) == (1, f"nlpapp: error: --config {config}: epochs must be an integer, got 'ten'")
    config.write_text("lora_rank: 4\n")
    code, _, err = cli("train", "generation", "--config", str(config), "--output", str(tmp_path / "b"))
    assert code == 1 and "unknown setting 'lora_rank'; did you mean 'lora_r'?" in err


def test_a_broken_adapter_folder_is_one_line(cli, tiny_model, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "good film", "label": "good"}\n{"text": "bad film", "label": "bad"}\n' * 2)
    adapter = tmp_path / "topic"
    code, _, err = cli("train", "sentiment", "--data", str(data), "-m", str(tiny_model("encoder")), "--output",
                       str(adapter), "--epochs", "1", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    manifest = adapter / "nlpapp-adapter.json"
    good = manifest.read_text()
    for broken, message in [("{bad", "cannot be read"), ("{}", "is incomplete (no kind, task, base_model")]:
        manifest.write_text(broken)
        code, _, err = cli("run", "sentiment", "--adapter", str(adapter), "great")
        assert code == 1 and message in err and "Traceback" not in err, err
    manifest.write_text(good)
    (adapter / "adapter_model.safetensors").unlink()
    code, _, err = cli("run", "sentiment", "--adapter", str(adapter), "great")
    assert code == 1 and "has no adapter_model.safetensors: the adapter's weights are missing" in err


def test_a_refused_training_run_leaves_no_folder_behind(cli, tiny_model, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(data),
                       "--output", str(tmp_path / "out"))
    assert code == 1 and "fewer than one global batch" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "nlpapp-home"]  # no .out.checkpoints
