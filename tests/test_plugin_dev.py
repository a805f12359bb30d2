"""Third-party plugin development: isolation of broken plugins, doctor, compatibility,
lazy commands, the scaffold, and the test kit's fixtures."""

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from nlpapp import Head, TaskKind, hookimpl, scaffold
from nlpapp.testing import install_plugin

BROKEN_IMPORT = "import nlpapp_no_such_dependency\n"

RAISES_IN_HOOKS = """
from nlpapp import Head, ModelPreset, hookimpl

@hookimpl
def register_models(register):
    register(ModelPreset("crashy", Head.CAUSAL_LM, "a model whose loader crashes", "test", "MIT",
                         locate=lambda: "crashy://model"))

@hookimpl(tryfirst=True)
def load_model(path, family, options):
    if path.startswith("crashy://"):
        raise ZeroDivisionError("division by zero in the loader")

@hookimpl
def on_train_step(step, metrics):
    raise RuntimeError("tracker offline")
"""


def test_a_plugin_that_fails_to_import_leaves_every_command_working(register_plugin, cli):
    register_plugin("broken", BROKEN_IMPORT)
    code, out, err = cli("tasks")
    assert code == 0 and "sentiment" in out
    assert "plugin 'broken' skipped: failed to load: ModuleNotFoundError" in err
    code, out, _ = cli("run", "sentiment", "great", "-m", "fake-classifier", "--json")
    assert code == 0 and json.loads(out)["label"] == "positive"
    code, out, _ = cli("plugins", "doctor")
    assert code == 1
    assert "error   broken: failed to load: ModuleNotFoundError: No module named 'nlpapp_no_such_dependency'" in out
    assert "fix: install what it imports" in out


def test_an_exception_inside_a_hook_names_the_plugin(register_plugin, cli, tiny_model, tmp_path):
    register_plugin("crashy", RAISES_IN_HOOKS)
    code, _, err = cli("run", "generation", "hi", "-m", "crashy")
    assert code == 1
    assert err.strip() == ("nlpapp: error: plugin 'crashy' failed in load_model: ZeroDivisionError: "
                           "division by zero in the loader")
    # an observer that raises is reported once; training goes on
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n' * 4)
    code, out, err = cli("train", "generation", "--data", str(data), "-m", str(tiny_model("causal-lm")), "--output",
                         str(tmp_path / "adapter"), "--epochs", "2", "--batch-size", "2", "--no-progress")
    assert code == 0, err
    assert err.count("plugin 'crashy' failed in on_train_step (ignored from now on): RuntimeError: tracker offline") == 1


def test_a_plugin_for_another_nlpapp_version_is_refused_before_import(register_plugin, cli):
    register_plugin("future", BROKEN_IMPORT, requires=["nlpapp>=9.0"])  # importing it would fail differently
    register_plugin("fits", "from nlpapp import hookimpl\n", requires=["nlpapp>=0.1,<1", "click"])
    code, out, err = cli("plugins", "list", "--json")
    assert code == 0
    infos = {i["name"]: i for i in json.loads(out)}
    assert infos["future"]["status"] == "incompatible"
    assert infos["future"]["error"] == ("nlpapp-future 0.1.0 supports nlpapp >=9.0, and this is nlpapp 0.1.0: "
                                        "install a release of nlpapp-future made for 0.1.0, or an nlpapp that "
                                        "matches >=9.0")
    assert infos["fits"]["status"] == "loaded" and infos["fits"]["requires_nlpapp"] == "<1,>=0.1"


def test_a_plugin_for_another_hook_api_is_refused(register_plugin, cli):
    register_plugin("oldapi", "from nlpapp import hookimpl\nNLPAPP_HOOK_API = 0\n")
    code, out, _ = cli("plugins", "list", "--json")
    info = {i["name"]: i for i in json.loads(out)}["oldapi"]
    assert info["status"] == "incompatible"
    assert info["error"].startswith("written for hook API 0, and this nlpapp has hook API 1")


def test_doctor_finds_heavy_imports_and_says_all_is_well_otherwise(register_plugin):
    env = dict(os.environ, NLPAPP_LOAD_PLUGINS="generation")
    out = subprocess.run([sys.executable, "-m", "nlpapp", "plugins", "doctor"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "no problems found" in out.stdout
    register_plugin("heavy", "import sacrebleu\nfrom nlpapp import hookimpl\n")
    env["NLPAPP_LOAD_PLUGINS"] = "generation,heavy"
    out = subprocess.run([sys.executable, "-m", "nlpapp", "plugins", "doctor", "--json"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr  # warnings, not errors
    findings = json.loads(out.stdout)
    assert {"level": "warning", "plugin": "heavy", "message": "importing it loads sacrebleu",
            "fix": "move those imports into the functions that run a model"} in findings


LAZY_PLUGIN = """
from nlpapp import hookimpl

@hookimpl
def register_commands(cli):
    cli.add_lazy_command("hello", "lazy_hello_impl:hello", "Say hello from a plugin.")
"""

LAZY_IMPL = """
import click

@click.command()
@click.option("--name", default="world")
def hello(name):
    click.echo(f"hello, {name}")
"""


def test_plugin_commands_show_in_help_without_importing_them(register_plugin, cli):
    site = register_plugin("lazy", LAZY_PLUGIN)
    (site / "lazy_hello_impl.py").write_text(LAZY_IMPL)
    importlib.invalidate_caches()
    sys.modules.pop("lazy_hello_impl", None)
    code, out, _ = cli("--help")
    assert code == 0 and "hello       Say hello from a plugin." in out
    assert "lazy_hello_impl" not in sys.modules
    code, out, err = cli("hello", "--name", "plugin")
    assert code == 0, err
    assert out == "hello, plugin\n" and "lazy_hello_impl" in sys.modules


def test_plugins_list_shows_import_time_and_hides_the_core_unless_all(cli):
    code, out, _ = cli("plugins")
    assert code == 0 and out.splitlines()[0].split() == ["PLUGIN", "VERSION", "STATUS", "IMPORT", "HOOKS",
                                                          "REGISTERED", "/", "ERROR"]
    assert [line.split()[4] for line in out.splitlines() if line.startswith("qa ")] == ["datasets,task_kinds"]
    assert "nlpapp.core" not in out
    code, out, _ = cli("plugins", "list", "--all", "--json")
    infos = {i["name"]: i for i in json.loads(out)}
    assert infos["nlpapp.core"]["status"] == "loaded" and infos["qa"]["import_seconds"] >= 0


def test_uninstall_maps_a_plugin_name_to_its_distribution_without_loading_it(register_plugin, cli, monkeypatch):
    register_plugin("broken", BROKEN_IMPORT)
    calls = []
    monkeypatch.setattr("nlpapp.cli.plugins._pip", lambda args: calls.append(args))
    code, _, err = cli("plugins", "uninstall", "broken", "-y")
    assert code == 0, err
    assert calls == [["uninstall", "-y", "nlpapp-broken"]]


def test_install_without_a_target_is_a_user_error(cli):
    code, _, err = cli("plugins", "install")
    assert code == 1 and "name a plugin to install" in err


# --- the scaffold ---------------------------------------------------------------------------

def test_new_plugin_writes_a_complete_distribution(cli, tmp_path):
    code, out, err = cli("new-plugin", "legal-summary", "--output", str(tmp_path))
    assert code == 0, err
    root = tmp_path / "nlpapp-legal-summary"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "nlpapp_legal_summary/__init__.py", "nlpapp_legal_summary/sample.jsonl", "pyproject.toml",
        "tests/test_legal_summary.py"]
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["nlpapp"] == {"legal-summary": "nlpapp_legal_summary"}
    assert project["dependencies"] == ["nlpapp>=0.1,<0.2"]
    code, _, err = cli("new-plugin", "legal-summary", "--output", str(tmp_path))
    assert code == 1 and "already exists" in err
    code, _, err = cli("new-plugin", "Legal_Summary", "--output", str(tmp_path))
    assert code == 1 and "use lower-case letters" in err


def test_each_kind_builds_on_its_stage_base_class(cli, tmp_path):
    bases = {"text-to-text": "TextToTextTask", "classification": "ClassificationTask",
             "tagging": "TokenTaggingTask", "span": "SpanExtractionTask"}
    assert list(scaffold.KINDS) == list(bases)
    for kind, base in bases.items():
        plugin = scaffold.files("demo", kind)["nlpapp_demo/__init__.py"]
        assert f"class Demo({base}):" in plugin and "TaskKind" not in plugin
    code, out, err = cli("new-plugin", "product-ner", "--kind", "tagging", "--output", str(tmp_path))
    assert code == 0, err
    assert "tagging task 'product-ner'" in out
    root = tmp_path / "nlpapp-product-ner"
    assert (root / "tests" / "conftest.py").is_file()  # the fake tagger the generated tests use
    assert '"nlpapp-token-classification>=0.1"' in (root / "pyproject.toml").read_text()
    code, _, err = cli("new-plugin", "other", "--kind", "regression", "--output", str(tmp_path))
    assert code != 0 and "'regression' is not one of" in err


def test_the_scaffold_of_every_kind_loads_runs_and_passes_its_own_tests(tmp_path, fake_plugin_site):
    """Installed on the entry-point path, each kind's generated plugin passes its own tests
    as generated: one pytest process for all of them, so torch loads and tiny models build once."""
    site = tmp_path / "site"
    for kind in scaffold.KINDS:
        name = f"my-{kind}"
        module = "nlpapp_" + name.replace("-", "_")
        files = scaffold.files(name, kind)
        sources = {path: text for path, text in files.items() if path.startswith(f"{module}/")}
        install_plugin(site, f"nlpapp-{name}", module, sources=sources, requires=["nlpapp>=0.1,<0.2"])
        for path, text in files.items():
            if path.startswith("tests/"):
                (tmp_path / kind / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / kind / path).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ["PYTHONPATH"]]))
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--import-mode=importlib",
                          *scaffold.KINDS], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and "SKIPPED" not in out.stdout, out.stdout[-3000:]
    for kind in scaffold.KINDS:  # each kind's conformance suite (to its adapter round trip) and own tests ran
        test_file = f"{kind}/tests/test_my_{kind.replace('-', '_')}.py"
        assert f"{test_file}::TestMy{kind.title().replace('-', '')}Conformance::test_an_adapter_round_trips PASSED" \
            in out.stdout, out.stdout[-3000:]
        assert f"{test_file}::test_run_and_eval_through_the_cli PASSED" in out.stdout


# --- the test kit ---------------------------------------------------------------------------

@dataclass
class ShoutInput:
    text: str


@dataclass
class ShoutOutput:
    text: str


class Shout(TaskKind):
    name = "shout"
    description = "Upper-case the text."
    heads = (Head.CAUSAL_LM,)
    default_model = "fake-causal"
    Input = ShoutInput
    Output = ShoutOutput

    def predict(self, model, inputs, options, stream=None):
        return [ShoutOutput(item.text.upper()) for item in inputs]


class ShoutPlugin:
    """A plugin as a plain object."""

    @hookimpl
    def register_task_kinds(self, register):
        register(Shout())


def test_isolated_runtime_has_only_the_named_plugins(isolated_runtime):
    runtime = isolated_runtime(ShoutPlugin())
    assert runtime.registries.tasks.names() == ["shout"]
    assert "smollm2" not in runtime.registries.models and "fake-causal" in runtime.registries.models
    from nlpapp.api import run

    assert [o.text for _, o in run(runtime, "shout", [("1", {"text": "hi"})])] == ["HI"]

