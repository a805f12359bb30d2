"""``continuous_batching``: greedy generation without a repetition penalty goes through
transformers' continuous batching (requests join the running batch), with the same text
the padded batch gives; requests it cannot decode alike still go to the model thread."""

import concurrent.futures
import sys
from pathlib import Path

import httpx
import pytest

from nlpapp.types import GenerationParams

sys.path.insert(0, str(Path(__file__).parent))
from serving_helpers import metric, start_in_process  # noqa: E402

PROMPTS = ["the weather is", "who founded the company?", "oil prices fell as crude supply grew"]


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NLPAPP_HOME", str(tmp_path_factory.mktemp("home")))
        live = start_in_process(models=(str(tiny_model("causal-lm")),), continuous_batching=True)
        yield live
        live.stop()


def _chat(url: str, model: str, prompt: str, **extra) -> dict:
    body = {"model": model, "max_tokens": 6, "messages": [{"role": "user", "content": prompt}], **extra}
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _batches(url: str) -> float:
    return metric(httpx.get(url + "/metrics").text, "nlpapp_batch_size_count") or 0.0


def test_concurrent_greedy_requests_run_continuously_with_the_padded_batchs_text(server):
    [entry] = server.state.catalog.entries.values()
    expected = entry.model.generate_each(PROMPTS, GenerationParams(max_new_tokens=6))  # padded, greedy, no penalty
    before = _batches(server.url)
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(lambda p: _chat(server.url, entry.id, p), PROMPTS))
    assert [a["choices"][0]["message"]["content"] for a in answers] == expected
    assert _batches(server.url) == before  # none went through the model thread's batches
    assert all(a["usage"]["completion_tokens"] <= 6 for a in answers)


def test_a_streamed_answer_equals_the_whole_one(server):
    [entry] = server.state.catalog.entries.values()
    whole = _chat(server.url, entry.id, PROMPTS[0])["choices"][0]["message"]["content"]
    body = {"model": entry.id, "max_tokens": 6, "stream": True, "messages": [{"role": "user", "content": PROMPTS[0]}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as response:
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    import json

    chunks = [json.loads(line) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_request_it_cannot_decode_alike_goes_to_the_padded_batch(server):
    [entry] = server.state.catalog.entries.values()
    before = _batches(server.url)
    _chat(server.url, entry.id, PROMPTS[0], temperature=0.7, seed=1)  # sampling: not continuous here
    assert _batches(server.url) == before + 1
