"""An adapter's task options (its manifest's "options", the settings it was trained and
evaluated with) are the defaults wherever it is used: run, the library, the streaming
api.run, eval and both systems of a compare. Options given explicitly win, even one equal
to the task's default; options the task does not take now are dropped with one warning.

The adapter is a tiny Llama's, trained one step; its manifest is then given options by
hand. Greedy decoding makes the outputs repeatable, and ``max_new_tokens`` shows in them:
the generation task's default is 128 tokens, the adapter's is 3."""

import json
from pathlib import Path

import pytest

from nlpapp.api import run
from nlpapp.configs import CompareConfig, EvalConfig
from nlpapp.training.config import TrainConfig

PROMPT = "the weather is"
SAVED = 3  # the adapter's max_new_tokens; the task's default is 128


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory) -> Path:
    """One adapter for the module (each test changes a copy's manifest)."""
    from nlpapp.api import Runtime

    folder = tmp_path_factory.mktemp("adapter-options")
    data = folder / "gen.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"say the number {i}", "response": f"number {i} is here"}) + "\n"
                            for i in range(8)))
    held_out = folder / "dev.jsonl"
    held_out.write_text(json.dumps({"prompt": "say the number 9", "response": "number 9 is here"}) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NLPAPP_HOME", str(folder / "home"))
        Runtime.create().train(TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(data)],
                                           eval_data=[str(held_out)], output=str(folder / "adapter"), max_steps=1,
                                           batch_size=4, save_every=0))
    return folder / "adapter"


@pytest.fixture
def adapter(trained, tmp_path, nlpapp_home) -> str:
    import shutil

    copy = tmp_path / "adapter"
    shutil.copytree(trained, copy)
    set_options(copy, {"max_new_tokens": SAVED})
    return str(copy)


def set_options(folder: Path | str, options: dict | None) -> None:
    """What the trainer writes, or (None) a manifest from before it wrote options."""
    path = Path(folder) / "nlpapp-adapter.json"
    manifest = json.loads(path.read_text())
    manifest.pop("options", None)
    if options is not None:
        manifest["options"] = options
    path.write_text(json.dumps(manifest))


def respond(runtime, adapter, options=None) -> str:
    [output] = runtime.run("generation", [PROMPT], adapter=adapter, options=options)
    return output.response


def tokens(runtime, tiny_model, text: str) -> int:
    return len(runtime.models.load(str(tiny_model("causal-lm"))).tokenizer(text, add_special_tokens=False).input_ids)


def test_run_takes_the_adapters_options_and_an_explicit_one_wins(runtime, tiny_model, adapter):
    saved = respond(runtime, adapter)
    assert saved == respond(runtime, adapter, {"max_new_tokens": SAVED})
    assert tokens(runtime, tiny_model, saved) <= SAVED
    explicit_default = respond(runtime, adapter, {"max-new-tokens": 128})  # the task's default, given: it wins
    assert tokens(runtime, tiny_model, explicit_default) > SAVED and explicit_default.startswith(saved)
    whole = runtime.task("generation").Options()  # an instance is complete: the task's defaults, all given
    assert respond(runtime, adapter, whole) == explicit_default
    set_options(adapter, None)  # a manifest without options: the task's defaults, as before
    assert respond(runtime, adapter) == explicit_default


def test_the_streaming_api_run_takes_them_too(runtime, adapter):
    [(_, output)] = list(run(runtime, "generation", [("input 1", {"prompt": PROMPT})], adapter=adapter))
    assert output.response == respond(runtime, adapter, {"max_new_tokens": SAVED})


def test_nlpapp_run_with_the_adapter(cli, runtime, adapter):
    code, out, err = cli("run", "generation", "--adapter", adapter, PROMPT, "--json")
    assert code == 0, err
    assert json.loads(out)["response"] == respond(runtime, adapter, {"max_new_tokens": SAVED})
    code, out, err = cli("run", "generation", "--adapter", adapter, PROMPT, "--json", "--max-new-tokens", "128")
    assert code == 0, err
    assert json.loads(out)["response"] == respond(runtime, adapter, {"max_new_tokens": 128})


def test_options_the_task_does_not_take_are_dropped_with_one_warning(cli, runtime, adapter):
    set_options(adapter, {"max_new_tokens": SAVED, "style": "terse", "raw": "yes"})
    code, out, err = cli("run", "generation", "--adapter", adapter, PROMPT, "--json")
    assert code == 0, err
    assert err.strip() == (f"nlpapp: warning: adapter {adapter} was trained with options that task 'text-generation' "
                           "does not take now, left out: style, raw (must be true or false, got 'yes')")
    assert json.loads(out)["response"] == respond(runtime, adapter, {"max_new_tokens": SAVED})


def test_eval_and_both_systems_of_a_compare_decode_with_the_adapters_options(runtime, tiny_model, adapter, tmp_path):
    base = str(tiny_model("causal-lm"))
    [short] = runtime.run("generation", [PROMPT], model=base, options={"max_new_tokens": SAVED})
    data = tmp_path / "dev.jsonl"  # the reference is what the base says in 3 tokens: 128 tokens score lower
    data.write_text(json.dumps({"prompt": PROMPT, "response": short.response}) + "\n")
    scored = runtime.evaluate(EvalConfig(task="generation", data=str(data), adapter=adapter, bootstrap=0))
    assert tokens(runtime, tiny_model, scored.predictions[0]["prediction"]) <= SAVED

    def rouge(**kw) -> float:
        return runtime.evaluate(EvalConfig(task="generation", data=str(data), bootstrap=0, **kw)).scores["rougeL"].value

    assert rouge(model=base) < 100.0
    compared = runtime.compare(CompareConfig(task="generation", data=str(data), bootstrap=0,
                                             systems=["base", adapter]))
    assert compared.systems[0].scores["rougeL"].value == 100.0  # the base decoded with the adapter's options
    assert compared.systems[1].scores["rougeL"].value == rouge(adapter=adapter)
    explicit = runtime.compare(CompareConfig(task="generation", data=str(data), bootstrap=0,
                                             systems=["base", adapter], options={"max_new_tokens": 128}))
    assert explicit.systems[0].scores["rougeL"].value == rouge(model=base)
