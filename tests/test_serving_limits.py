"""``nlpapp serve`` under limits: admission (429 with Retry-After, fast), deadlines (504),
client disconnects, SIGTERM draining, API keys, body and token caps, batching across
requests and readiness. Servers run on free loopback ports (in-process, or ``nlpapp serve``
subprocesses); slow model calls come from a probe task plugin installed through the real
entry-point path. Every wait is bounded."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serving_helpers import (
    PROBE_MODULE,
    install_probe,
    metric,
    plugin_env,
    serve_command,
    start_in_process,
    start_subprocess,
    terminate,
    wait_for,
)


@pytest.fixture(scope="module")
def env(_fake_site, tmp_path_factory):
    probe = install_probe(tmp_path_factory.mktemp("probe-site"))
    with plugin_env(_fake_site, probe, tmp_path_factory.mktemp("home")):
        yield


@pytest.fixture
def serve(env):
    """``serve(**config)``: an in-process server, stopped after the test."""
    started = []

    def start(**config):
        started.append(start_in_process(**config))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def seen() -> list[str]:
    """What the probe task's predict has run, in this process."""
    return sys.modules[PROBE_MODULE].SEEN


def sleep_request(url: str, text: str, timeout: float = 20) -> httpx.Response:
    return httpx.post(url + "/v1/tasks/probe-sleep", json={"inputs": [text]}, timeout=timeout)


# --- 4. admission ----------------------------------------------------------------------------

def test_capacity_plus_k_gets_exactly_k_fast_429s_and_no_5xx(env):
    """A subprocess server (no GIL shared with the clients), capacity + K clients on warm
    keep-alive connections, released together: exactly K get 429 + Retry-After, fast."""
    capacity, extra = 4, 3
    server = start_subprocess("--model", "fake-causal", "--max-requests", str(capacity), "--batch-wait-ms", "300")
    clients = [httpx.Client(base_url=server.url, timeout=20) for _ in range(capacity + extra)]
    try:
        for client in clients:
            assert client.get("/health").status_code == 200  # open the connection now
        barrier = threading.Barrier(capacity + extra)

        def one(n: int) -> tuple[int, httpx.Response, float]:
            barrier.wait(5)
            started = time.perf_counter()
            response = clients[n].post("/v1/tasks/probe-sleep", json={"inputs": [f"0.3 request{n}"]})
            return n, response, time.perf_counter() - started

        with concurrent.futures.ThreadPoolExecutor(capacity + extra) as pool:
            results = list(pool.map(one, range(capacity + extra)))
        statuses = [r.status_code for _, r, _ in results]
        assert sorted(statuses) == [200] * capacity + [429] * extra, statuses
        for n, response, seconds in results:
            if response.status_code == 429:
                assert seconds < 0.1, f"a 429 took {seconds:.3f} s"
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["type"] == "rate_limit_error"
            else:
                assert response.json()["outputs"] == [{"text": f"0.3 request{n}"}]
        # the places are free again
        assert clients[0].post("/v1/tasks/probe-sleep", json={"inputs": ["0 after"]}).status_code == 200
        metrics = clients[0].get("/metrics").text
        assert metric(metrics, "nlpapp_requests_in_flight") == 0
        assert [line for line in metrics.splitlines() if 'status="5' in line and 'route="/ready"' not in line] == []
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_a_token_budget_overflow_is_429_and_a_request_over_it_alone_is_413(serve):
    live = serve(models=("fake-causal",), max_queued_tokens=50)
    holder = threading.Thread(target=sleep_request, args=(live.url, "1.0 " + "x" * 150))  # ~39 tokens
    holder.start()
    try:
        wait_for(lambda: live.state.admission.requests == 1, 5, "the first request admitted")
        crowded = sleep_request(live.url, "0 " + "y" * 60)  # ~16 tokens: over the budget while the first runs
        assert crowded.status_code == 429 and "Retry-After" in crowded.headers
        alone = sleep_request(live.url, "0 " + "z" * 400)
        assert alone.status_code == 413
    finally:
        holder.join(10)


# --- 5. deadline -----------------------------------------------------------------------------

def test_a_request_past_its_deadline_is_504_and_the_server_still_answers(serve):
    live = serve(models=("fake-causal", "fake-classifier"), request_timeout_s=0.5)
    started = time.perf_counter()
    late = sleep_request(live.url, "1.5 late")
    assert late.status_code == 504
    assert late.json()["error"]["code"] == "deadline_exceeded"
    assert 0.45 < time.perf_counter() - started < 1.4
    time.sleep(1.1)  # the model call itself cannot be interrupted: let it end
    after = httpx.post(live.url + "/v1/tasks/sentiment", json={"inputs": ["great"]}, timeout=10)
    assert after.status_code == 200 and after.json()["outputs"][0]["label"] == "positive"
    wait_for(lambda: metric(httpx.get(live.url + "/metrics").text, "nlpapp_requests_in_flight") == 0, 3,
             "no request in flight")


# --- 6. disconnect ---------------------------------------------------------------------------

def test_a_client_that_goes_away_has_its_job_cancelled(serve):
    live = serve(models=("fake-causal",))
    first = threading.Thread(target=sleep_request, args=(live.url, "1.0 first"))
    first.start()
    try:
        wait_for(lambda: "1.0 first" in seen(), 5, "the first request running")
        with pytest.raises(httpx.ReadTimeout):
            sleep_request(live.url, "0 abandoned", timeout=0.3)  # queued behind the first; closes
        in_flight = lambda: metric(httpx.get(live.url + "/metrics").text, "nlpapp_requests_in_flight")
        wait_for(lambda: in_flight() == 1, 0.6, "the abandoned request released while the first still runs")
    finally:
        first.join(10)
    wait_for(lambda: in_flight() == 0, 3, "no request in flight")
    assert sleep_request(live.url, "0 later").status_code == 200
    assert "0 abandoned" not in seen()  # dropped before it ran


# --- 10. batching across requests ------------------------------------------------------------

def test_concurrent_requests_share_batches_and_each_gets_its_own_answer(serve):
    live = serve(models=("fake-classifier",), batch_wait_ms=200)
    texts = ["great", "awful", "I love it", "bad bad", "wonderful day", "terrible waste"]
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: httpx.post(live.url + "/v1/tasks/sentiment", json={"inputs": [t]},
                                                     timeout=10), texts))
    labels = [a.json()["outputs"][0]["label"] for a in answers]
    assert labels == ["positive", "negative", "positive", "negative", "positive", "negative"]
    calls = live.model("fake-classifier").calls
    assert sum(calls) == len(texts)
    assert len(calls) < len(texts) and max(calls) > 1, calls
    metrics = httpx.get(live.url + "/metrics").text
    assert metric(metrics, "nlpapp_batch_size_count") >= 1
    assert metric(metrics, "nlpapp_batch_size_sum") >= len(texts)


# --- 9. safety: keys, body and token caps ----------------------------------------------------

def test_an_api_key_guards_everything_but_the_probes(serve):
    live = serve(models=("fake-causal",), api_key="sekret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sekret"},
                    {"Authorization": "Basic sekret"}):
        for method, path in (("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/tasks/text-generation")):
            response = httpx.request(method, live.url + path, headers=headers, json={"inputs": ["a b"]}, timeout=10)
            assert response.status_code == 401, (headers, path)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "invalid_api_key"
    good = {"Authorization": "Bearer sekret"}
    assert httpx.get(live.url + "/v1/models", headers=good).status_code == 200
    answer = httpx.post(live.url + "/v1/tasks/text-generation", headers=good, json={"inputs": ["a b"]})
    assert answer.json()["outputs"] == [{"response": "b a"}]
    for path in ("/health", "/ready"):
        assert httpx.get(live.url + path).status_code == 200


def test_a_body_over_the_cap_is_413(serve):
    live = serve(models=("fake-classifier",), max_body_bytes=2048)
    big = {"inputs": ["great " * 1000]}
    assert httpx.post(live.url + "/v1/tasks/sentiment", json=big).status_code == 413

    def chunks():  # no Content-Length: the cap must hold for a streamed body too
        for _ in range(10):
            yield b" " * 1000
        yield b'{"inputs": ["great"]}'

    assert httpx.post(live.url + "/v1/tasks/sentiment", content=chunks(),
                      headers={"Content-Type": "application/json"}).status_code == 413
    assert httpx.post(live.url + "/v1/tasks/sentiment", json={"inputs": ["great"]}).status_code == 200


def test_max_tokens_and_n_over_the_caps_are_422_naming_the_field(serve):
    live = serve(models=("fake-causal",), max_tokens=16, max_n=2)
    chat = {"model": "fake-causal", "messages": [{"role": "user", "content": "a b"}]}
    for path, body in (("/v1/chat/completions", chat), ("/v1/completions", {"model": "fake-causal", "prompt": "a"})):
        for extra, param in (({"max_tokens": 17}, "max_tokens"), ({"max_completion_tokens": 17},
                                                                   "max_completion_tokens"), ({"n": 3}, "n")):
            response = httpx.post(live.url + path, json={**body, **extra})
            assert response.status_code == 422, (path, extra)
            assert response.json()["error"]["param"] == param
        ok = httpx.post(live.url + path, json={**body, "max_tokens": 16, "n": 2})
        assert ok.status_code == 200 and len(ok.json()["choices"]) == 2
    over = httpx.post(live.url + "/v1/tasks/text-generation", json={"inputs": ["a"], "options": {"max_new_tokens": 17}})
    assert (over.status_code, over.json()["error"]["param"]) == (422, "options.max_new_tokens")


# --- 11. readiness -----------------------------------------------------------------------------

def test_ready_is_503_failed_when_a_model_cannot_load(serve, tmp_path):
    missing = tmp_path / "no-such-model"
    live = serve(models=("fake-causal", str(missing)), wait_ready=False)
    assert httpx.get(live.url + "/health").status_code == 200
    wait_for(lambda: httpx.get(live.url + "/ready").json()["status"] == "failed", 10, "/ready says failed")
    ready = httpx.get(live.url + "/ready")
    assert ready.status_code == 503 and ready.json()["error"]
    answer = httpx.post(live.url + "/v1/tasks/text-generation", json={"inputs": ["a"]})
    assert answer.status_code == 503 and "Retry-After" in answer.headers


# --- subprocesses: nlpapp serve itself -------------------------------------------------------

def test_serve_refuses_a_public_address_without_a_key(env):
    import subprocess

    done = subprocess.run(serve_command("--model", "fake-causal", "--host", "0.0.0.0", "--port", "0", "--json"),
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stdout == ""  # no address announced: nothing bound
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--api-key" in lines[0] and "Traceback" not in done.stderr


def test_serve_with_an_unloadable_model_exits_1_with_one_line(env, tmp_path):
    import subprocess

    done = subprocess.run(serve_command("--model", str(tmp_path / "no-such-model"), "--port", "0", "--json"),
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # the error, once
    assert lines[0].startswith("nlpapp: error:") and "no-such-model" in lines[0] and "Traceback" not in done.stderr


def test_sigterm_drains_the_request_in_flight_and_exits_0(env):
    server = start_subprocess("--model", "fake-causal")
    try:
        result: list[httpx.Response] = []
        client = threading.Thread(target=lambda: result.append(sleep_request(server.url, "1.5 draining")))
        client.start()
        wait_for(lambda: metric(httpx.get(server.url + "/metrics").text, "nlpapp_requests_in_flight") == 1, 5,
                 "the request in flight")
        terminate(server.proc, signal.SIGTERM)
        client.join(15)
        assert result and result[0].status_code == 200
        assert result[0].json()["outputs"] == [{"text": "1.5 draining"}]
        assert server.proc.wait(10) == 0
    finally:
        server.stop()


def test_sigterm_lets_a_stream_in_flight_finish(env):
    """sse-starlette ends every stream on shutdown unless given a grace period: the server
    gives it --drain-timeout, so a stream that was running gets every word and [DONE]."""
    server = start_subprocess("--model", "probe-slow-words")
    try:
        words = "one two three four five six seven eight nine ten"
        body = {"model": "probe-slow-words", "max_tokens": 20, "stream": True, "messages": [{"role": "user",
                                                                                             "content": words}]}
        events: list[str] = []
        first = threading.Event()

        def read() -> None:
            with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                        first.set()

        client = threading.Thread(target=read)
        client.start()
        assert first.wait(10), "no event from the stream"
        terminate(server.proc, signal.SIGTERM)  # about 2 s of words still to come
        client.join(30)
        assert events and events[-1] == "[DONE]", events[-3:]
        chunks = [json.loads(e) for e in events[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == words
        assert server.proc.wait(30) == 0
    finally:
        server.stop()


def test_with_a_key_the_openapi_document_needs_it_too(serve):
    live = serve(api_key="sekret")
    assert httpx.get(live.url + "/openapi.json").status_code == 401
    document = httpx.get(live.url + "/openapi.json", headers={"Authorization": "Bearer sekret"})
    assert document.status_code == 200 and "/v1/chat/completions" in document.json()["paths"]


def test_without_the_key_nothing_else_is_answered(serve):
    live = serve(api_key="sekret")
    bad_json = httpx.post(live.url + "/v1/tasks/sentiment", content=b"{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 401  # the key first: no hint about the body or the routes
    assert httpx.get(live.url + "/v1/no-such-route").status_code == 401
