"""``nlpapp serve``: the endpoints against a live server on a free loopback port, with the
fake models loaded through the real plugin path: the real ``openai`` client (chat, streaming,
completions, embeddings, models), every task's route, errors naming the field, the OpenAPI
document and a schemathesis fuzz of it (no 5xx), and batching across requests."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serving_helpers import FAKE_MODELS, install_probe, plugin_env, start_in_process

from nlpapp.testing.fake import FakeModel


@pytest.fixture(scope="module")
def env(_fake_site, tmp_path_factory):
    probe = install_probe(tmp_path_factory.mktemp("probe-site"))
    with plugin_env(_fake_site, probe, tmp_path_factory.mktemp("home")):
        yield


@pytest.fixture(scope="module")
def live(env):
    server = start_in_process(models=FAKE_MODELS, max_tokens=300, max_n=4)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(live):
    with live.client() as client:
        yield client


@pytest.fixture(scope="module")
def oai(live):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=20)
    yield client
    client.close()


def reversed_words(text: str, limit: int | None = None) -> str:
    """What fake-causal answers: the prompt's words reversed, cut to ``limit`` words."""
    return " ".join(text.split()[::-1][:limit])


# --- 1. the real openai client -------------------------------------------------------------------

def test_openai_chat_completion_is_the_fake_models_answer(oai):
    answer = oai.chat.completions.create(model="fake-causal",
                                         messages=[{"role": "user", "content": "the cat sat down"}])
    assert answer.model == "fake-causal"
    assert answer.object == "chat.completion"
    assert len(answer.choices) == 1
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "down sat cat the"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_openai_chat_max_tokens_cuts_the_answer_and_finishes_for_length(oai):
    answer = oai.chat.completions.create(model="fake-causal", max_tokens=2,
                                         messages=[{"role": "user", "content": "one two three four"}])
    assert answer.choices[0].message.content == "four three"
    assert answer.choices[0].finish_reason == "length"


def test_openai_chat_streaming_joins_to_the_whole_answer(oai):
    messages = [{"role": "user", "content": "alpha beta gamma delta epsilon"}]
    whole = oai.chat.completions.create(model="fake-causal", messages=messages).choices[0].message.content
    chunks = list(oai.chat.completions.create(model="fake-causal", messages=messages, stream=True))
    assert len(chunks) >= 3  # the role, pieces, the finish
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    joined = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert joined == whole == "epsilon delta gamma beta alpha"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_openai_streaming_with_usage_ends_with_a_usage_chunk(oai):
    chunks = list(oai.chat.completions.create(model="fake-causal", stream=True,
                                              stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "a b c"}]))
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_completions_list_of_prompts_with_n_keeps_openais_order(oai):
    answer = oai.completions.create(model="fake-causal", prompt=["one two three", "four five six"], n=2,
                                    max_tokens=2)
    assert [c.index for c in answer.choices] == [0, 1, 2, 3]
    assert [c.text for c in answer.choices] == ["three two", "three two", "six five", "six five"]
    assert [c.finish_reason for c in answer.choices] == ["length"] * 4


def test_openai_completion_stop_text_is_cut(oai):
    answer = oai.completions.create(model="fake-causal", prompt="one two three four", stop=" two")
    assert answer.choices[0].text == "four three"
    assert answer.choices[0].finish_reason == "stop"


def test_openai_embeddings_equal_the_fake_models_vectors(oai):
    texts = ["hello world", "a completely different sentence"]
    answer = oai.embeddings.create(model="fake-encoder", input=texts)  # the client asks base64
    expected = FakeModel("fake-encoder", "encoder").embed(texts)
    assert [d.index for d in answer.data] == [0, 1]
    for got, want in zip(answer.data, expected):
        assert len(got.embedding) == len(want)
        assert max(abs(a - b) for a, b in zip(got.embedding, want)) < 1e-6
    floats = oai.embeddings.create(model="fake-encoder", input="hello world", encoding_format="float")
    assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, expected[0])) < 1e-6


def test_embeddings_base64_is_little_endian_float32(http):
    body = http.post("/v1/embeddings", json={"model": "fake-encoder", "input": "hi there",
                                             "encoding_format": "base64"}).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    vector = struct.unpack(f"<{len(raw) // 4}f", raw)
    want = FakeModel("fake-encoder", "encoder").embed(["hi there"])[0]
    assert len(vector) == len(want) and max(abs(a - b) for a, b in zip(vector, want)) < 1e-6


def test_openai_models_list_names_every_served_model(oai):
    assert [m.id for m in oai.models.list()] == list(FAKE_MODELS)
    assert oai.models.retrieve("fake-qa").id == "fake-qa"


def test_openai_client_sees_a_404_for_a_model_not_served(oai):
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="/etc/passwd", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404
    assert caught.value.body["code"] == "model_not_found"


# --- 2. tasks ------------------------------------------------------------------------------------

def test_tasks_lists_every_registered_task(live, http):
    registered = {t.name for t in live.state.catalog.runtime.registries.tasks}
    listed = http.get("/v1/tasks").json()["data"]
    assert {t["name"] for t in listed} == registered
    assert {"text-classification", "question-answering", "summarization", "translation", "text-generation",
            "probe-sleep", "probe-boom"} <= registered
    by_name = {t["name"]: t for t in listed}
    assert by_name["text-classification"]["path"] == "/v1/tasks/text-classification"
    assert "fake-classifier" in by_name["text-classification"]["models"]
    assert "text" in by_name["text-classification"]["input_schema"]["properties"]
    assert http.get("/v1/tasks/sentiment").json()["name"] == "text-classification"


@pytest.mark.parametrize("route", ["text-classification", "sentiment"])
def test_classification_answers_each_input(http, route):
    response = http.post(f"/v1/tasks/{route}", json={"inputs": ["I love it, great", {"text": "awful and bad"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["task"], body["model"], body["adapter"]) == ("text-classification", "fake-classifier", None)
    assert [o["label"] for o in body["outputs"]] == ["positive", "negative"]
    assert body["outputs"][0]["scores"]["positive"] == pytest.approx(1 / (1 + 2.718281828459045 ** -2))


def test_question_answering_answers_from_the_context(http):
    body = http.post("/v1/tasks/question-answering", json={"inputs": [
        {"question": "who wrote it", "context": "it was Shakespeare"}], "model": "fake-qa"}).json()
    assert body["outputs"] == [{"answer": "Shakespeare", "score": 0.9, "start": 7, "end": 18}]
    # the alias answers too, and the default model is chosen by head
    assert http.post("/v1/tasks/qa", json={"inputs": [{"question": "who", "context": "it was Shakespeare"}],
                                           "model": "fake-qa"}).json()["outputs"][0]["answer"] == "Shakespeare"


def test_summarization_translation_and_generation(http):
    summary = http.post("/v1/tasks/summarization", json={"inputs": ["one two three four"],
                                                         "model": "fake-seq2seq"}).json()
    assert summary["outputs"][0]["summary"] == "FOUR THREE TWO ONE"
    translated = http.post("/v1/tasks/translation", json={"inputs": ["one two three"], "model": "fake-seq2seq",
                                                          "options": {"target_lang": "fr"}})
    assert translated.status_code == 200, translated.text
    assert translated.json()["outputs"] == [{"translation": "THREE TWO ONE"}]
    generated = http.post("/v1/tasks/text-generation", json={"inputs": ["a b c d e", {"prompt": "x y"}],
                                                             "options": {"max_new_tokens": 3}}).json()
    assert generated["model"] == "fake-causal"
    assert [o["response"] for o in generated["outputs"]] == ["e d c", "y x"]


def test_a_plugin_task_is_served(http):
    body = http.post("/v1/tasks/probe-sleep", json={"inputs": ["0 hello"]}).json()
    assert body["outputs"] == [{"text": "0 hello"}]


@pytest.mark.parametrize("options, param", [
    ({"max_new_tokens": "many"}, "options.max_new_tokens"),
    ({"max_new_tokens": 0}, "options.max_new_tokens"),
    ({"temperature": -1}, "options.temperature"),
    ({"no_such_option": 1}, "options.no_such_option"),
    ({"max_new_tokens": 301}, "options.max_new_tokens"),  # over the server's --max-tokens
])
def test_bad_options_are_422_naming_the_field(http, options, param):
    response = http.post("/v1/tasks/text-generation", json={"inputs": ["a"], "options": options})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param


def test_bad_inputs_are_422_naming_the_field(http):
    response = http.post("/v1/tasks/question-answering", json={"inputs": [{"question": "who"}]})
    assert response.status_code == 422
    assert response.json()["error"]["param"].startswith("inputs.0")
    assert http.post("/v1/tasks/sentiment", json={"inputs": []}).json()["error"]["param"] == "inputs"
    assert http.post("/v1/tasks/sentiment", json={}).json()["error"]["param"] == "inputs"


@pytest.mark.parametrize("asked, suggested", [("summarisation", "summarization"), ("sentimnt", "sentiment")])
def test_unknown_task_is_404_with_did_you_mean(http, asked, suggested):
    response = http.post(f"/v1/tasks/{asked}", json={"inputs": ["x"]})
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("task_not_found", "task")
    assert f"did you mean {suggested!r}" in error["message"]


@pytest.mark.parametrize("model", ["fake-classifer", "nope", "/etc", "../fake-classifier", "fake-classifier:x"])
def test_unknown_model_is_404(http, model):
    response = http.post("/v1/tasks/sentiment", json={"inputs": ["x"], "model": model})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    if model == "fake-classifer":
        assert "did you mean 'fake-classifier'" in response.json()["error"]["message"]


@pytest.mark.parametrize("path, body", [
    ("/v1/tasks/sentiment", {"inputs": ["x"], "model": "fake-qa"}),
    ("/v1/embeddings", {"input": ["x"], "model": "fake-classifier"}),
])
def test_a_model_that_cannot_do_it_is_a_400_and_the_connection_stays_usable(live, path, body):
    """An UnsupportedModelError from the model thread: 400 on the wire, 400 in the metrics,
    no traceback, and the same keep-alive connection answers the next request."""
    with live.client() as client:
        response = client.post(path, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "unsupported_model"
        again = client.post("/v1/tasks/sentiment", json={"inputs": ["great"]})  # same connection
        assert again.status_code == 200
        route = path if path != "/v1/tasks/sentiment" else "/v1/tasks/sentiment"
        metrics = client.get("/metrics").text
    assert f'nlpapp_requests_total{{route="{route}",status="400"}}' in metrics
    assert f'nlpapp_requests_total{{route="{route}",status="500"}}' not in metrics


def test_openapi_has_a_path_per_task(live, http):
    document = http.get("/openapi.json").json()
    for task in live.state.catalog.runtime.registries.tasks:
        path = document["paths"][f"/v1/tasks/{task.name}"]
        assert "post" in path and "get" in path
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/health", "/ready"):
        assert path in document["paths"]


def test_probes_and_playground(http):
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready").json()
    assert ready["status"] == "ready" and set(ready["models"]) == set(FAKE_MODELS)
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


# --- 8. an exception inside a model call ---------------------------------------------------------

def test_an_exception_in_predict_is_a_500_naming_it_and_the_server_keeps_serving(http):
    response = http.post("/v1/tasks/probe-boom", json={"inputs": ["boom"]})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "plugin_error"  # the engine names the plugin whose predict raised
    assert "RuntimeError" in error["message"] and "kaboom from the probe" in error["message"]
    assert http.post("/v1/tasks/probe-boom", json={"inputs": ["fine"]}).json()["outputs"] == [{"text": "fine"}]
    assert http.post("/v1/tasks/sentiment", json={"inputs": ["great"]}).status_code == 200


def test_one_bad_request_in_a_shared_batch_fails_only_itself(live):
    """Concurrent probe-boom requests share a batch; only the one with "boom" fails."""
    with live.client() as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda t: client.post("/v1/tasks/probe-boom", json={"inputs": [t]}),
                                ["a", "boom", "c", "d"]))
    assert [a.status_code for a in answers] == [200, 500, 200, 200]
    assert answers[2].json()["outputs"] == [{"text": "c"}]


# --- 3. schema fuzz ------------------------------------------------------------------------------

def test_schemathesis_fuzz_finds_no_server_errors(live, tmp_path):
    """schemathesis (CLI, bounded examples and time) against /openapi.json: no 5xx."""
    pytest.importorskip("schemathesis")
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{live.url}/openapi.json",
               "--checks", "not_a_server_error", "--max-examples", "8", "--max-time", "25", "--seed", "1",
               "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "10",
               "--suppress-health-check", "all", "--exclude-path-regex", "probe-sleep|probe-boom"]
    started = time.monotonic()
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert time.monotonic() - started < 60
    assert "/v1/tasks/text-classification" in done.stdout or "passed" in done.stdout.lower(), done.stdout[-2000:]


# --- what the server does not offer, and mistakes it must name -----------------------------------

@pytest.mark.parametrize("route, extra, field", [
    ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ("/v1/chat/completions", {"logprobs": True}, "logprobs"),
    ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
    ("/v1/chat/completions", {"frequency_penalty": 0.5}, "frequency_penalty"),
    ("/v1/completions", {"echo": True}, "echo"),
    ("/v1/completions", {"best_of": 3}, "best_of"),
])
def test_a_field_asking_for_what_is_not_offered_is_refused_not_ignored(http, route, extra, field):
    body = {"model": "fake-causal", "max_tokens": 3, **extra}
    body.update({"messages": [{"role": "user", "content": "a b"}]} if "chat" in route else {"prompt": "a b"})
    response = http.post(route, json=body)
    assert response.status_code == 422
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (field, "unsupported_field")


def test_fields_left_at_their_neutral_values_are_accepted(http):
    body = {"model": "fake-causal", "max_tokens": 3, "messages": [{"role": "user", "content": "a b"}],
            "logprobs": False, "tools": [], "frequency_penalty": 0, "response_format": {"type": "text"}}
    assert http.post("/v1/chat/completions", json=body).status_code == 200


def test_embeddings_refuse_dimensions(http):
    response = http.post("/v1/embeddings", json={"model": "fake-encoder", "input": "hi", "dimensions": 10})
    assert (response.status_code, response.json()["error"]["param"]) == (422, "dimensions")


def test_an_empty_prompt_is_422_not_a_500(http):
    response = http.post("/v1/completions", json={"model": "fake-causal", "prompt": "", "max_tokens": 3})
    assert response.status_code == 422 and response.json()["error"]["message"].startswith("prompt[0] is empty")


def test_a_record_input_names_its_own_missing_field(http):
    response = http.post("/v1/tasks/qa", json={"inputs": [{"question": "Who?"}]})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "inputs.0.context: Field required"


def test_a_body_that_is_not_json_says_so(http):
    response = http.post("/v1/tasks/sentiment", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("the body is not valid JSON")


@pytest.mark.parametrize("method, path, status, code", [("GET", "/v1/no-such-route", 404, "not_found"),
                                                        ("GET", "/v1/chat/completions", 405, "method_not_allowed")])
def test_starlettes_own_answers_have_the_openai_shape(http, method, path, status, code):
    response = http.request(method, path)
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_a_misspelled_field_is_refused_with_a_suggestion(http):
    body = {"model": "fake-causal", "max_token": 2, "messages": [{"role": "user", "content": "a b"}]}
    error = http.post("/v1/chat/completions", json=body).json()["error"]
    assert (error["code"], error["param"]) == ("unknown_field", "max_token")
    assert "did you mean 'max_tokens'?" in error["message"]


def test_a_chat_with_no_text_is_refused_like_an_empty_prompt(http):
    body = {"model": "fake-causal", "messages": [{"role": "user", "content": "  "}]}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
