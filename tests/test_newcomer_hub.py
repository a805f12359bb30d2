"""Issue 11 part 9: ``--model gpt2`` (a hub id) with no network fails at once, in one line,
instead of half a minute of retries; with the network (or a proxy, or the model in the
local cache) it goes on as before."""

import shutil
import socket
import time

import pytest

from nlpapp.errors import ModelLoadError
from nlpapp.runtime import store


def _local_url(listening: list) -> str:
    """A local URL where something accepts connections (kept in ``listening``), or, with
    ``listening`` None, one where nothing does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    if listening is None:
        server.close()  # connections are refused
    else:
        server.listen()
        listening.append(server)
    return url


@pytest.fixture
def hub(monkeypatch):
    """``hub(reachable)``: point the hub endpoint at a local port that accepts connections or
    refuses them; returns the URL. No real network is involved."""
    import huggingface_hub.constants as constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(store, "_probed", {})
    listening: list = []

    def endpoint(reachable: bool) -> str:
        url = _local_url(listening if reachable else None)
        monkeypatch.setattr(constants, "ENDPOINT", url)
        return url

    yield endpoint
    for server in listening:
        server.close()


def _one_line(code, err):
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_mode_fails_at_once_in_one_line(cli, hub, monkeypatch, var):
    hub(reachable=True)  # the variable alone decides, without trying the network
    monkeypatch.setenv(var, "1")
    started = time.perf_counter()
    code, out, err = cli("run", "generation", "--model", "gpt2", "hi")
    assert time.perf_counter() - started < 5
    assert out == ""
    assert _one_line(code, err) == (
        f"nlpapp: error: cannot fetch 'gpt2' from the Hugging Face Hub ({var} is set) and it is not in the local "
        "cache; use a local model folder, a .gguf file or a registered model (nlpapp models)")


def test_an_unreachable_hub_fails_at_once_in_one_line(cli, hub):
    hub(reachable=False)
    started = time.perf_counter()
    code, _, err = cli("run", "generation", "--model", "gpt2", "hi")
    assert time.perf_counter() - started < 5  # no retries (they took about 25 s)
    line = _one_line(code, err)
    assert line.startswith("nlpapp: error: cannot fetch 'gpt2' from the Hugging Face Hub (no connection to 127.0.0.1)")
    assert "nlpapp models" in line


def test_a_reachable_hub_is_used_as_before(runtime, hub):
    hub(reachable=True)
    resolved = runtime.models.resolve("someorg/somemodel")
    assert (resolved.kind, resolved.path) == ("hub", "someorg/somemodel")


def test_a_reachable_proxy_counts_as_the_way_to_the_hub(runtime, hub, monkeypatch):
    hub(reachable=False)
    listening: list = []
    monkeypatch.setenv("HTTP_PROXY", _local_url(listening))
    try:
        assert runtime.models.resolve("someorg/somemodel").path == "someorg/somemodel"
    finally:
        listening[0].close()


def test_offline_a_model_in_the_local_cache_still_runs(cli, runtime, hub, monkeypatch, tiny_model, tmp_path):
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--someorg--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model("causal-lm"), snapshot)
    (cache / "models--someorg--tiny" / "refs").mkdir()
    (cache / "models--someorg--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert runtime.models.resolve("someorg/tiny").path == str(snapshot)
    code, out, err = cli("run", "generation", "--model", "someorg/tiny", "--max-new-tokens", "2", "--json", "hi")
    assert code == 0, err
    with pytest.raises(ModelLoadError, match="not in the local cache"):
        runtime.models.resolve("someorg/other")
