"""The playground page (``GET /``) in a real headless browser (Debian's chromium) against a
live loopback server with the fake models: it lists the tasks, runs one and shows its
output, streams generation over server-sent events, shows the server's error messages,
sends the API key, and fetches nothing from any other host.

Set NLPAPP_SCREENSHOT=1 to rewrite docs/images/playground.png from the run."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "images" / "playground.png"
MODELS = ("fake-causal", "fake-classifier", "fake-encoder", "fake-qa")
WAIT_MS = 5_000  # every wait in the browser is bounded by this
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture
def serve(fake_plugin_site: Path) -> Iterator[Callable[..., str]]:
    """``serve(**config)`` -> the base URL of a live server with the fake models, ready."""
    import uvicorn

    import nlpapp
    from nlpapp.serving import ServeConfig, create_app

    started: list[tuple[Any, threading.Thread]] = []

    def start(**config: Any) -> str:
        app = create_app(nlpapp.Runtime.create(), ServeConfig(models=MODELS, **config))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return base
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise
            assert time.monotonic() < deadline, "the server was not ready within 15 s"
            time.sleep(0.05)

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no chromium browser here (/usr/bin/chromium or chromium on PATH): the playground "
                    "page is tested in a real headless browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page with its console errors, uncaught exceptions and requests recorded."""

    def __init__(self, browser: Any, base: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[Any] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", lambda r: self.requests.append(r))
        self.base = base

    def open(self) -> Any:
        self.page.goto(self.base + "/", timeout=WAIT_MS)
        return self.page

    def posted(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.post_data) for r in self.requests if r.method == "POST" and r.url == self.base + path]

    def foreign(self) -> list[str]:
        return [r.url for r in self.requests if not r.url.startswith(self.base + "/") and not r.url.startswith("data:")]


def _wait_for_tasks(page: Any) -> None:
    page.wait_for_selector('#task option[value="text-classification"]', state="attached", timeout=WAIT_MS)


def test_playground_runs_a_task_and_streams_generation(serve: Callable[..., str], browser: Any) -> None:
    from playwright.sync_api import expect

    watched = Watched(browser, serve())
    page = watched.open()
    expect(page).to_have_title("nlpapp playground")
    _wait_for_tasks(page)

    # every task is offered; a task lists only the models that can run it
    tasks = page.eval_on_selector_all("#task option", "os => os.map(o => o.value)")
    assert {"text-classification", "text-generation", "question-answering"} <= set(tasks)
    page.select_option("#task", "text-classification")
    models = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert sorted(models) == ["fake-classifier", "fake-encoder"]
    assert page.is_hidden("#stream-field"), "a task that does not stream offers no stream choice"

    # run it: the page posts the input and no options (none changed), and shows the label
    page.select_option("#model", "fake-classifier")
    page.get_by_label("Text", exact=True).fill("a wonderful film")
    page.get_by_role("button", name="Run").click()
    expect(page.locator('#output dd[data-field="label"]')).to_have_text("positive", timeout=WAIT_MS)
    expect(page.locator("#error")).to_be_hidden()
    assert watched.posted("/v1/tasks/text-classification") == [
        {"inputs": [{"text": "a wonderful film"}], "model": "fake-classifier"}]
    assert '"label": "positive"' in page.text_content("#raw")
    if os.environ.get("NLPAPP_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1100, "height": 400})  # the full page, no empty space below
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 860})

    # text generation, whole, run from the keyboard; a changed option is sent, unchanged ones not
    page.select_option("#task", "text-generation")
    assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == ["fake-causal"]
    page.locator("#options-box summary").click()  # the options are folded away until asked for
    page.get_by_label("Max New Tokens", exact=True).fill("50")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("one two three four")
    prompt.press("Control+Enter")
    expect(page.locator('#output dd[data-field="response"]')).to_have_text("four three two one", timeout=WAIT_MS)
    assert watched.posted("/v1/tasks/text-generation") == [
        {"inputs": [{"prompt": "one two three four"}], "model": "fake-causal", "options": {"max_new_tokens": 50}}]

    # streamed: the OpenAI chat route with "stream": true, read piece by piece
    page.get_by_label("Stream the text as it is generated").check()
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#stream-text")).to_have_text("four three two one", timeout=WAIT_MS)
    expect(page.locator("#status")).to_contain_text("finish: stop", timeout=WAIT_MS)
    expect(page.locator("#error")).to_be_hidden()
    [streamed] = watched.posted("/v1/chat/completions")
    assert streamed == {"model": "fake-causal", "stream": True, "max_tokens": 50,
                        "messages": [{"role": "user", "content": "one two three four"}]}
    chunks = json.loads(page.text_content("#raw"))
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    assert len([p for p in pieces if p]) >= 2, f"the text came in one piece, not streamed: {pieces}"

    # raw: the completions route, the prompt as is
    page.get_by_label("Raw", exact=True).check()
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#stream-text")).to_have_text("four three two one", timeout=WAIT_MS)
    assert watched.posted("/v1/completions")[0]["prompt"] == "one two three four"

    # every control is labelled; nothing left this server; nothing went wrong in the page
    unlabelled = page.eval_on_selector_all(
        "input, select, textarea", "cs => cs.filter(c => !c.labels.length && !c.getAttribute('aria-label'))"
                                   ".map(c => c.id || c.outerHTML)")
    assert unlabelled == []
    assert watched.foreign() == []
    assert watched.errors == []
    watched.context.close()


def test_playground_shows_the_servers_error(serve: Callable[..., str], browser: Any) -> None:
    from playwright.sync_api import expect

    watched = Watched(browser, serve())
    page = watched.open()
    _wait_for_tasks(page)
    page.select_option("#task", "translation")
    page.get_by_label("Text", exact=True).fill("a wonderful film")
    page.get_by_role("button", name="Run").click()
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error).to_contain_text("target", timeout=WAIT_MS)  # the server's error.message, shown as is
    expect(page.locator("#output .output")).to_have_count(0)

    # a task no served model can run says so, and cannot be run
    page.select_option("#task", "token-classification")
    expect(page.locator("#error")).to_contain_text("no model", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    assert watched.foreign() == []
    assert [e for e in watched.errors if "Failed to load resource" not in e] == []  # the 400 itself
    watched.context.close()


def test_playground_sends_the_api_key(serve: Callable[..., str], browser: Any) -> None:
    from playwright.sync_api import expect

    watched = Watched(browser, serve(api_key="s3cret"))
    page = watched.open()
    expect(page.locator("#error")).to_contain_text("API key", timeout=WAIT_MS)  # 401 until it is given
    key = page.get_by_label("API key", exact=True)
    key.fill("s3cret")
    key.press("Tab")  # change: remembered, and the tasks load
    _wait_for_tasks(page)
    assert page.evaluate("sessionStorage.getItem('nlpapp.apiKey')") == "s3cret"
    page.select_option("#task", "text-classification")
    page.select_option("#model", "fake-classifier")
    page.get_by_label("Text", exact=True).fill("a good and great film")
    page.get_by_role("button", name="Run").click()
    expect(page.locator('#output dd[data-field="label"]')).to_have_text("positive", timeout=WAIT_MS)
    sent = [r for r in watched.requests if r.url.endswith("/v1/tasks/text-classification")]
    assert sent and sent[0].headers.get("authorization") == "Bearer s3cret"

    page.reload(timeout=WAIT_MS)  # the key survives a reload of the tab
    _wait_for_tasks(page)
    assert page.get_by_label("API key", exact=True).input_value() == "s3cret"
    assert watched.foreign() == []
    watched.context.close()
