"""Helpers for the ``nlpapp serve`` tests: a probe task plugin (slow or failing predict),
in-process servers (uvicorn in a thread) and ``nlpapp serve`` subprocesses, all on free
loopback ports. Every wait is bounded in time."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

# A task plugin for the server tests: ``probe-sleep`` sleeps the number of seconds its text
# says (at most 5) and echoes it; ``probe-boom`` raises RuntimeError for a text "boom" and
# echoes any other. What ran is kept in ``SEEN`` (in-process tests read it).
PROBE_SOURCE = '''
import time
from dataclasses import dataclass
from nlpapp import Head, Model, ModelPreset, TaskKind, hookimpl

SEEN = []


@dataclass
class In:
    text: str


@dataclass
class Out:
    text: str


class Sleep(TaskKind):
    name = "probe-sleep"
    description = "sleeps the seconds its text says, then echoes it"
    heads = (Head.CAUSAL_LM,)
    default_model = "fake-causal"
    Input = In
    Output = Out

    def predict(self, model, inputs, options, stream=None):
        SEEN.extend(i.text for i in inputs)
        for i in inputs:
            try:
                time.sleep(min(5.0, max(0.0, float(i.text.split()[0]))))
            except ValueError:
                pass
        return [Out(i.text) for i in inputs]

    def render(self, output):
        return output.text


class Boom(TaskKind):
    name = "probe-boom"
    description = "raises RuntimeError for the text boom"
    heads = (Head.CAUSAL_LM,)
    default_model = "fake-causal"
    Input = In
    Output = Out

    def predict(self, model, inputs, options, stream=None):
        if any(i.text == "boom" for i in inputs):
            raise RuntimeError("kaboom from the probe")
        return [Out(i.text) for i in inputs]

    def render(self, output):
        return output.text


class SlowWords(Model):
    """A causal model that answers with the prompt's words, one every 0.2 s, streamed."""

    head = Head.CAUSAL_LM

    def generate(self, prompts, params, *, chat=True, stream=None):
        texts = []
        for prompt in prompts:
            words = prompt.split()[: params.max_new_tokens]
            for n, word in enumerate(words):
                time.sleep(0.2)
                if stream is not None and len(prompts) == 1:
                    stream(word if n == 0 else " " + word)
            texts.append(" ".join(words))
        return texts


@hookimpl
def register_task_kinds(register):
    register(Sleep())
    register(Boom())


@hookimpl
def register_models(register):
    register(ModelPreset(name="probe-slow-words", family=Head.CAUSAL_LM, description="streams a word every 0.2 s",
                         source="tests", license="Apache-2.0", locate=lambda: "probe://slow-words"))


@hookimpl
def load_model(path, head):
    return SlowWords() if path == "probe://slow-words" else None
'''
PROBE_MODULE = "nlpapp_serving_probe_plugin"

FAKE_MODELS = ("fake-causal", "fake-seq2seq", "fake-encoder", "fake-classifier", "fake-qa")


def install_probe(site: Path) -> Path:
    """Install the probe plugin into ``site`` (put it on sys.path / PYTHONPATH)."""
    from nlpapp.testing import install_plugin

    install_plugin(site, "serving-probe", PROBE_MODULE, sources={f"{PROBE_MODULE}.py": PROBE_SOURCE},
                   distribution="nlpapp-serving-probe")
    return site


@contextlib.contextmanager
def plugin_env(fake_site: Path, probe_site: Path, home: Path) -> Iterator[None]:
    """The fake models and the probe plugin on sys.path and PYTHONPATH, an empty NLPAPP_HOME."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for site in (fake_site, probe_site):
            mp.syspath_prepend(str(site))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(probe_site), str(fake_site),
                                                               os.environ.get("PYTHONPATH")])))
        mp.setenv("NLPAPP_HOME", str(home))
        for var in ("NLPAPP_LOAD_PLUGINS", "NLPAPP_DISABLE_PLUGINS", "NLPAPP_API_KEY"):
            mp.delenv(var, raising=False)
        yield


class LiveServer:
    """A server running in this process (uvicorn in a thread)."""

    def __init__(self, app: Any, server: Any, thread: threading.Thread, url: str):
        self.app, self.server, self.thread, self.url = app, server, thread, url

    @property
    def state(self) -> Any:
        return self.app.state.nlpapp

    def model(self, model_id: str) -> Any:
        return self.state.catalog.entries[model_id].model

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 20), **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_in_process(wait_ready: bool = True, **config: Any) -> LiveServer:
    """``create_app`` for a fresh runtime and ``ServeConfig(**config)``, served on a free port."""
    import uvicorn

    import nlpapp
    from nlpapp.serving import ServeConfig, create_app

    config.setdefault("models", FAKE_MODELS)
    app = create_app(nlpapp.Runtime.create(), ServeConfig(**config))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="test-uvicorn")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    live = LiveServer(app, server, thread, f"http://127.0.0.1:{port}")
    if wait_ready:
        wait_for(lambda: httpx.get(live.url + "/ready", timeout=5).status_code == 200, 20, "GET /ready == 200")
    return live


def wait_for(condition: Any, seconds: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what}")


def metric(text: str, name: str) -> float | None:
    """The value of the unlabelled sample ``name`` in a Prometheus exposition."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


class ServeProcess:
    """``nlpapp serve ... --port 0 --json`` in a subprocess."""

    def __init__(self, proc: subprocess.Popen, url: str | None, pid: int | None):
        self.proc, self.url, self.pid = proc, url, pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nlpapp", "serve", *args]


def start_subprocess(*args: str, ready: bool = True, seconds: float = 60) -> ServeProcess:
    """Start ``nlpapp serve ARGS --port 0 --json`` and wait for its address (and /ready)."""
    proc = subprocess.Popen(serve_command(*args, "--port", "0", "--json"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if not lines or not lines[0].strip():
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"nlpapp serve printed no address; stderr: {err[-2000:]}")
    announced = json.loads(lines[0])
    live = ServeProcess(proc, announced["url"], announced["pid"])
    if ready:
        wait_for(lambda: httpx.get(live.url + "/ready", timeout=5).status_code == 200, seconds, "GET /ready == 200",
                 every=0.05)
    return live


def terminate(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
