"""Fixtures shared by the training test modules (the nlpapp pytest plugin has the rest)."""

import json

import pytest


@pytest.fixture
def gen_data(tmp_path):
    """16 prompt/response pairs for the generation task, as a JSONL path."""
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"say the number {i}", "response": f"number {i} is here"}) + "\n"
                            for i in range(16)))
    return str(path)
