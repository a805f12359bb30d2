"""Many adapters on one base: requests naming different LoRA adapters (and the base) share
one generation batch (peft's ``adapter_names``), and each row's text is exactly what that
adapter gives alone. Two adapters are trained on a tiny Llama to say different things, so
a row run with the wrong adapter would show."""

import concurrent.futures
import json
import sys
from pathlib import Path

import httpx
import pytest

from nlpapp.types import GenerationParams

sys.path.insert(0, str(Path(__file__).parent))
from serving_helpers import metric, start_in_process  # noqa: E402

PROMPT = "say the word"
GREEDY = GenerationParams(max_new_tokens=4)


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """Adapters "cats" and "oil", each trained to answer every prompt with its own words."""
    from nlpapp.api import Runtime
    from nlpapp.training.config import TrainConfig

    folder = tmp_path_factory.mktemp("served-adapters")
    made = {}
    for name, answer in (("cats", "the film was boring"), ("oil", "oil prices fell")):
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"prompt": f"{PROMPT} {i}", "response": answer}) + "\n" for i in range(8)))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("NLPAPP_HOME", str(folder / "home"))
            Runtime.create().train(TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(data)],
                                               output=str(folder / name), max_steps=30, lr=0.05, batch_size=8,
                                               holdout=0, save_every=0))
        made[name] = folder / name
    return made


@pytest.fixture
def server(adapters, tiny_model, fake_plugin_site):
    live = start_in_process(models=(str(tiny_model("causal-lm")),), batch_wait_ms=400,
                            adapters=tuple((name, str(path)) for name, path in adapters.items()))
    yield live
    live.stop()


def _chat(url: str, model: str) -> str:
    body = {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": PROMPT}]}
    answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["choices"][0]["message"]["content"]


def test_the_model_mixes_adapters_row_by_row_as_each_alone_would(server):
    entries = server.state.catalog.entries
    base = next(e for e in entries.values() if e.adapter is None)
    cats, oil = (next(e for e in entries.values() if e.adapter == n) for n in ("cats", "oil"))
    model = base.model
    assert model.mixes_adapters and cats.model is model and oil.model is model
    keys = [cats.adapter_key, None, oil.adapter_key, cats.adapter_key]
    alone = {key: model.generate_each([PROMPT], GREEDY, adapters=[key])[0] for key in set(keys)}
    assert len(set(alone.values())) == 3  # the adapters and the base say different things
    mixed = model.generate_each([PROMPT] * len(keys), GREEDY, adapters=keys)
    assert mixed == [alone[key] for key in keys]


def test_requests_for_different_adapters_share_one_batch(server):
    """The adapters were trained with the same task options, so their requests decode alike
    and may share a batch (the base model's defaults differ: it batches on its own)."""
    base = next(e for e in server.state.catalog.entries.values() if e.adapter is None).id
    models = [f"{base}:cats", f"{base}:oil", f"{base}:oil", f"{base}:cats"]
    alone = {model: _chat(server.url, model) for model in set(models)}
    assert len(set(alone.values())) == 2
    before = metric(httpx.get(server.url + "/metrics").text, "nlpapp_batch_size_count")
    with concurrent.futures.ThreadPoolExecutor(len(models)) as pool:
        together = list(pool.map(lambda m: _chat(server.url, m), models))
    after = metric(httpx.get(server.url + "/metrics").text, "nlpapp_batch_size_count")
    assert together == [alone[m] for m in models]
    assert after - before == 1  # one batch for the four requests


def test_an_adapter_named_with_another_base_says_where_it_is_served(adapters, tiny_model, fake_plugin_site):
    base, other = str(tiny_model("causal-lm")), "fake-causal"
    live = start_in_process(models=(base, other), adapters=(("cats", str(adapters["cats"])),))
    try:
        body = {"model": other, "adapter": "cats", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
        wrong_base = httpx.post(live.url + "/v1/chat/completions", json=body, timeout=30).json()["error"]
        assert wrong_base["code"] == "adapter_base_mismatch" and f"{base}:cats" in wrong_base["message"]
        body = {"model": f"{other}:cats", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(live.url + "/v1/chat/completions", json=body, timeout=30)
        assert answer.status_code == 404 and f"served as '{base}:cats'" in answer.json()["error"]["message"]
    finally:
        live.stop()
