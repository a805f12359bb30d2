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


def test_sampling_beside_continuous_batching_gives_what_it_gives_alone(server):
    """Sampling goes to the model thread's padded batch while the manager runs greedy requests:
    the manager runs on its own copy of the weights, so neither disturbs the other."""
    [entry] = server.state.catalog.entries.values()
    sampled = {"temperature": 0.9, "seed": 3}
    alone = _chat(server.url, entry.id, PROMPTS[0], **sampled)["choices"][0]["message"]["content"]
    greedy_alone = _chat(server.url, entry.id, PROMPTS[1])["choices"][0]["message"]["content"]
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        greedy = [pool.submit(_chat, server.url, entry.id, PROMPTS[1], max_tokens=6) for _ in range(4)]
        # one sampled request: two with one seed may share a padded batch, where the rows draw apart
        together = pool.submit(_chat, server.url, entry.id, PROMPTS[0], **sampled)
        text = together.result()["choices"][0]["message"]["content"]
        assert all(f.result()["choices"][0]["message"]["content"] == greedy_alone for f in greedy)
    assert text == alone
    again = _chat(server.url, entry.id, PROMPTS[0], **sampled)["choices"][0]["message"]["content"]
    assert again == alone


@pytest.mark.slow
def test_sampling_beside_continuous_batching_on_smollm2(tmp_path, monkeypatch):
    """The same on the real default model, where sharing one module with the manager turned the
    sampled text into garbage ('_ADAC_NEDER Not_ native- Chinese_') for every later request too."""
    monkeypatch.setenv("NLPAPP_HOME", str(tmp_path))
    live = start_in_process(models=("smollm2",), continuous_batching=True)
    try:
        def chat(content: str, **extra) -> str:
            return _chat(live.url, "smollm2", content, max_tokens=16, **extra)["choices"][0]["message"]["content"]

        sampled = {"temperature": 0.7, "seed": 3}
        alone = chat("Name three colors.", **sampled)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            greedy = [pool.submit(chat, "What is 2+2?") for _ in range(2)]
            together = pool.submit(chat, "Name three colors.", **sampled).result()
            [f.result() for f in greedy]
        assert together == alone and chat("Name three colors.", **sampled) == alone
    finally:
        live.stop()
