"""Plugin loading through the real entry-point path, including broken plugins."""

import json
import textwrap

import pytest

from nlpapp.plugins import load_plugins
from nlpapp.testing import install_plugin

BUILTIN = {"generation", "qa", "translation", "summarization", "sentiment", "token-classification", "default-models"}


def _site(tmp_path, monkeypatch, name, source):
    site = tmp_path / "site"
    module = name.replace("-", "_") + "_mod"
    install_plugin(site, name, module, sources={f"{module}.py": textwrap.dedent(source)})
    monkeypatch.syspath_prepend(str(site))
    return site


def test_builtin_plugins_load_through_entry_points(fake_plugin_site):
    plugins = load_plugins()
    loaded = {n for n, i in plugins.plugins.items() if i.status == "loaded"}
    assert BUILTIN <= loaded
    # transformers' task names; the plugins keep their distribution and entry-point names
    assert plugins.registries.tasks.names() == ["question-answering", "summarization", "text-classification",
                                                "text-generation", "token-classification", "translation"]
    assert plugins.registries.heads.plugin_of("token-classification") == "token-classification"
    assert plugins.registries.tasks.plugin_of("qa") == "qa"
    assert plugins.plugins["qa"].registered == {"task": ["question-answering"], "dataset": ["qa-sample"]}
    # the core metrics come from the core, not from one task plugin
    assert plugins.plugins["nlpapp.core"].registered["metric"] == ["bleu", "chrf", "classification", "rouge",
                                                                   "squad", "ter"]
    assert plugins.plugins["qa"].version == "0.1.0"


def test_the_old_task_names_are_aliases(cli):
    tasks = load_plugins().registries.tasks
    for old, new in [("generation", "text-generation"), ("qa", "question-answering"),
                     ("sentiment", "text-classification"), ("sentiment-analysis", "text-classification"),
                     ("ner", "token-classification")]:
        assert tasks.canonical(old) == new and tasks.get(old) is tasks.get(new)
    code, out, err = cli("tasks", "--json")
    assert code == 0, err
    assert {t["name"]: t["aliases"] for t in json.loads(out)} == {
        "text-generation": ["generation"], "question-answering": ["qa"],
        "text-classification": ["sentiment", "sentiment-analysis"], "summarization": [],
        "token-classification": ["ner"], "translation": []}
    code, out, err = cli("tasks")
    assert "text-classification   sentiment, sentiment-analysis  minilm" in out


def test_plugin_that_fails_to_import_is_skipped(tmp_path, monkeypatch, fake_plugin_site):
    _site(tmp_path, monkeypatch, "broken", "import no_such_module_anywhere\n")
    warnings = []
    plugins = load_plugins(warn=warnings.append)
    info = plugins.plugins["broken"]
    assert info.status == "failed"
    assert "No module named 'no_such_module_anywhere'" in info.error
    assert warnings == [f"plugin 'broken' skipped: {info.error}"]
    assert "generation" in plugins.registries.tasks  # the others still work


def test_misspelled_hook_fails_loudly_with_suggestion(tmp_path, monkeypatch, fake_plugin_site):
    _site(tmp_path, monkeypatch, "typo", """
        from nlpapp import hookimpl

        @hookimpl
        def register_task_kind(register):
            pass
    """)
    warnings = []
    plugins = load_plugins(warn=warnings.append)
    assert plugins.plugins["typo"].status == "failed"
    assert "unknown hook 'register_task_kind' (did you mean 'register_task_kinds'?)" in warnings[0]


def test_plugin_raising_in_registration_commits_nothing(tmp_path, monkeypatch, fake_plugin_site):
    _site(tmp_path, monkeypatch, "halfway", """
        from nlpapp import hookimpl, ModelPreset, Head

        @hookimpl
        def register_models(register):
            register(ModelPreset("halfway-model", Head.ENCODER, "d", "s", "MIT", locate=str))
            raise RuntimeError("boom")
    """)
    plugins = load_plugins(warn=lambda m: None)
    assert plugins.plugins["halfway"].status == "failed"
    assert "RuntimeError: boom" in plugins.plugins["halfway"].error
    assert "halfway-model" not in plugins.registries.models


def test_duplicate_task_from_third_party_names_both(tmp_path, monkeypatch, fake_plugin_site):
    _site(tmp_path, monkeypatch, "zz-clash", """
        from nlpapp import hookimpl
        from nlpapp_generation import Generation

        @hookimpl
        def register_task_kinds(register):
            register(Generation())
    """)
    plugins = load_plugins(warn=lambda m: None)
    error = plugins.plugins["zz-clash"].error
    assert "task 'text-generation' is registered by both plugin 'generation' and plugin 'zz-clash'" in error
    assert plugins.registries.tasks.plugin_of("generation") == "generation"


def test_allow_list_and_block_list(monkeypatch, fake_plugin_site):
    monkeypatch.setenv("NLPAPP_LOAD_PLUGINS", "qa,default-models")
    plugins = load_plugins()
    assert plugins.registries.tasks.names() == ["question-answering"]
    assert plugins.plugins["generation"].status == "disabled"
    monkeypatch.delenv("NLPAPP_LOAD_PLUGINS")
    monkeypatch.setenv("NLPAPP_DISABLE_PLUGINS", "qa")
    plugins = load_plugins()
    assert "qa" not in plugins.registries.tasks
    assert "generation" in plugins.registries.tasks


def test_empty_allow_list_loads_only_the_core(monkeypatch, fake_plugin_site):
    monkeypatch.setenv("NLPAPP_LOAD_PLUGINS", "")
    plugins = load_plugins()
    assert [n for n, i in plugins.plugins.items() if i.status == "loaded"] == ["nlpapp.core"]


def test_load_model_hook_prefers_plugins_over_the_hf_default(fake_plugin_site):
    plugins = load_plugins()
    impls = [i.plugin_name for i in plugins.hook.load_model.get_hookimpls()]
    assert impls[0] == "nlpapp.core"  # trylast: called after every other implementation
    assert "nlpapp-fake-models" in impls


@pytest.mark.parametrize("bad_hook_arg", ["registr"])
def test_wrong_hook_argument_name_is_a_load_failure(tmp_path, monkeypatch, fake_plugin_site, bad_hook_arg):
    _site(tmp_path, monkeypatch, "badarg", f"""
        from nlpapp import hookimpl

        @hookimpl
        def register_models({bad_hook_arg}):
            pass
    """)
    plugins = load_plugins(warn=lambda m: None)
    assert plugins.plugins["badarg"].status == "failed"
    assert bad_hook_arg in plugins.plugins["badarg"].error


def test_a_plugin_using_every_registration_hook(tmp_path, monkeypatch, cli):
    _site(tmp_path, monkeypatch, "everything", """
        import click
        from nlpapp import DatasetSpec, LoraPreset, MetricSpec, hookimpl

        @hookimpl
        def register_datasets(register):
            register(DatasetSpec("demo-set", "sentiment", "two lines", open=lambda: [{"text": "hi"}]))

        from nlpapp.evaluation.metrics import MetricResult

        def exact(predictions, references):
            hits = [100.0 * (p in refs) for p, refs in zip(predictions, references)]
            rescore = lambda idx: {"exact": sum(hits[i] for i in idx) / len(idx)}
            return MetricResult(rescore(range(len(hits))), "exact:case=yes", rescore)

        @hookimpl
        def register_metrics(register):
            register(MetricSpec("exact", "exact match", compute=exact))

        @hookimpl
        def register_lora_presets(register):
            register(LoraPreset("llama-qv", ("llama",), ("q_proj", "v_proj")))

        @click.command()
        def hello():
            click.echo("hello from a plugin")

        @hookimpl
        def register_commands(cli):
            cli.add_command(hello)
    """)
    plugins = load_plugins()
    assert plugins.plugins["everything"].registered == {
        "dataset": ["demo-set"], "metric": ["exact"], "LoRA preset": ["llama-qv"]}
    assert plugins.registries.metrics.get("exact").compute(["a", "b"], [["a"], ["c"]]).scores == {"exact": 50.0}
    assert list(plugins.registries.datasets.get("demo-set").open()) == [{"text": "hi"}]
    assert plugins.registries.lora_presets.get("llama-qv").target_modules == ("q_proj", "v_proj")
    code, out, _ = cli("hello")
    assert (code, out) == (0, "hello from a plugin\n")


def test_the_deprecated_register_adapters_hook_still_registers_a_preset(tmp_path, monkeypatch, cli):
    _site(tmp_path, monkeypatch, "oldpresets", """
        from nlpapp import AdapterPreset, hookimpl

        @hookimpl
        def register_adapters(register):  # the hook's name before register_lora_presets
            register(AdapterPreset("old-qv", ("llama",), ("q_proj", "v_proj")))
    """)
    with pytest.warns(DeprecationWarning, match="rename it register_lora_presets"):
        plugins = load_plugins()
    assert plugins.plugins["oldpresets"].status == "loaded"
    assert plugins.plugins["oldpresets"].registered == {"LoRA preset": ["old-qv"]}
    assert plugins.registries.lora_presets.get("old-qv").target_modules == ("q_proj", "v_proj")
    with pytest.warns(DeprecationWarning):
        code, out, _ = cli("plugins", "doctor")
    assert "oldpresets: implements register_adapters, the deprecated name of register_lora_presets" in out


def test_a_plugin_whose_command_hook_raises_leaves_the_cli_working(tmp_path, monkeypatch, cli):
    _site(tmp_path, monkeypatch, "badcommands", """
        from nlpapp import hookimpl

        @hookimpl
        def register_commands(cli):
            raise RuntimeError("no commands today")
    """)
    code, out, err = cli("tasks")
    assert code == 0 and "generation" in out
    assert "plugin 'badcommands' could not add its commands: RuntimeError: no commands today" in err
