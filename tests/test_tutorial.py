"""The plugin tutorial (docs/plugins.md), followed to the letter in a fresh virtual
environment. Part 1: its files, installed with `nlpapp plugins install`, listed, run,
evaluated, trained, tested with its own tests, and uninstalled. Part 2 (a task with its
own head): installed, trained on an encoder, run and evaluated with the adapter, compared
with its base, listed among the adapters, and uninstalled."""

import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nlpapp.testing import install_plugin

TUTORIAL = Path(__file__).parent.parent / "docs" / "plugins.md"
# part 2's commands, in order; the slow test runs them with a tiny encoder for minilm
CHUNK_COMMANDS = [
    "nlpapp plugins install -e .",
    "nlpapp train chunk --data chunk-sample -m minilm --output adapters/chunk --epochs 20 --lr 2e-3 --batch-size 4",
    'nlpapp run chunk --adapter adapters/chunk "The young engineer fixed the broken printer ."',
    "nlpapp eval chunk --data chunk-sample --adapter adapters/chunk",
    "nlpapp eval chunk --data chunk-sample --compare base,adapters/chunk",
    "nlpapp adapters list",
    "nlpapp plugins uninstall chunk -y",
]


def tutorial_files(plugin: str = "nlpapp-shout") -> dict[str, str]:
    """Each code block that starts with a path comment in ``plugin/`` is (a part of) that file."""
    block = re.compile(r"```\w*\n# (" + re.escape(plugin) + r"/\S+)[^\n]*\n(.*?)```", re.S)
    files: dict[str, str] = {}
    for path, body in block.findall(TUTORIAL.read_text()):
        files[path] = files.get(path, "") + body + ("\n" if files.get(path) is not None else "")
    return files


def fresh_venv(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A fresh environment that sees this one's packages (nlpapp, torch) but installs into
    itself, with the fake models on PYTHONPATH and its own NLPAPP_HOME: its python and env."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site_dir = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    Path(site_dir, "outer.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    fakes = tmp_path / "fakes"
    install_plugin(fakes, "nlpapp-fake-models", "nlpapp.testing.fake_plugin")
    env = dict(os.environ, PYTHONPATH=str(fakes), NLPAPP_HOME=str(tmp_path / "home"))
    env.pop("NLPAPP_LOAD_PLUGINS", None)
    return python, env


def test_the_tutorial_names_every_file_of_the_plugin():
    assert sorted(tutorial_files()) == ["nlpapp-shout/nlpapp_shout/__init__.py",
                                        "nlpapp-shout/nlpapp_shout/sample.jsonl",
                                        "nlpapp-shout/pyproject.toml", "nlpapp-shout/tests/test_shout.py"]


@pytest.mark.slow
def test_a_plugin_written_from_the_tutorial_works_end_to_end(tmp_path, tiny_model):
    for path, text in tutorial_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    plugin = tmp_path / "nlpapp-shout"
    python, env = fresh_venv(tmp_path)

    def nlpapp(*args: str, cwd: Path = plugin) -> str:
        out = subprocess.run([python, "-m", "nlpapp", *args], capture_output=True, text=True, env=env, cwd=cwd)
        assert out.returncode == 0, f"nlpapp {' '.join(args)}: {out.stderr[-2000:]}"
        return out.stdout

    installed = nlpapp("plugins", "install", "--no-deps", "-e", ".")
    assert "plugin shout 0.1.0: loaded (registered task: shout; dataset: shout-sample; metric: shout-exact)" in installed
    listed = {i["name"]: i for i in json.loads(nlpapp("plugins", "list", "--json"))}
    assert listed["shout"]["status"] == "loaded" and listed["shout"]["requires_nlpapp"] == "<0.2,>=0.1"

    ran = json.loads(nlpapp("run", "shout", "rain is expected", "-m", "fake-causal", "--json"))
    assert ran["headline"].startswith("EXPECTED IS RAIN")  # the fake reverses the prompt's words
    report = json.loads(nlpapp("eval", "shout", "--data", "shout-sample", "-m", "fake-causal", "--json",
                               "--bootstrap", "20"))
    assert report["examples"] == 4 and "exact_match" in report["scores"]

    nlpapp("train", "shout", "--data", "nlpapp_shout/sample.jsonl", "-m", str(tiny_model("causal-lm")),
           "--output", str(tmp_path / "adapter"), "--epochs", "2", "--batch-size", "2", "--no-progress")
    with_adapter = json.loads(nlpapp("run", "shout", "--adapter", str(tmp_path / "adapter"), "rain", "--json",
                                     "--max-new-tokens", "4"))
    assert set(with_adapter) == {"text", "headline"}

    tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], capture_output=True, text=True,
                           env=env, cwd=plugin)
    assert tests.returncode == 0 and "passed" in tests.stdout, tests.stdout[-3000:]

    nlpapp("plugins", "uninstall", "shout", "-y")
    # from elsewhere: in the plugin's folder, its build metadata (nlpapp_shout.egg-info) is still importable
    assert "shout" not in {i["name"] for i in json.loads(nlpapp("plugins", "list", "--json", cwd=tmp_path))}


def test_part_2_names_every_file_of_its_plugin_and_each_command():
    assert sorted(tutorial_files("nlpapp-chunk")) == ["nlpapp-chunk/nlpapp_chunk/__init__.py",
                                                      "nlpapp-chunk/nlpapp_chunk/sample.jsonl",
                                                      "nlpapp-chunk/pyproject.toml"]
    part_2 = TUTORIAL.read_text().partition("# Part 2:")[2]
    assert all(command in part_2 for command in CHUNK_COMMANDS)


@pytest.mark.slow
def test_a_plugin_with_its_own_head_written_from_part_2_works_end_to_end(tmp_path, tiny_model):
    for path, text in tutorial_files("nlpapp-chunk").items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    plugin = tmp_path / "nlpapp-chunk"
    python, env = fresh_venv(tmp_path)
    encoder = str(tiny_model("encoder"))  # a tiny BERT for minilm, to keep it fast

    def nlpapp(command: str, cwd: Path = plugin) -> str:
        args = shlex.split(command.replace("-m minilm", f"-m {encoder}"))[1:]
        if args[:2] == ["plugins", "install"]:
            args.insert(2, "--no-deps")  # offline: nlpapp is in reach already, pip must not look for it
        out = subprocess.run([python, "-m", "nlpapp", *args], capture_output=True, text=True, env=env, cwd=cwd)
        assert out.returncode == 0, f"{command}: {out.stderr[-2000:]}"
        return out.stdout

    install, train, run, evaluate, compare, listed, uninstall = CHUNK_COMMANDS
    assert ("plugin chunk 0.1.0: loaded (registered task: chunk; dataset: chunk-sample; metric: chunk-accuracy; "
            "head: chunk-tagger)") in nlpapp(install)

    nlpapp(train)
    manifest = json.loads((plugin / "adapters" / "chunk" / "nlpapp-adapter.json").read_text())
    assert manifest["task"] == "chunk" and manifest["head"] == "chunk-tagger"
    assert sorted(manifest["labels"]) == ["B-NP", "I-NP", "O"]

    ran = nlpapp(run)
    assert ran.strip() == "(no entities)" or all(line.startswith("NP\t") for line in ran.splitlines())
    assert "token_accuracy" in nlpapp(evaluate)
    compared = nlpapp(compare)
    assert "chunk on chunk-sample: 12 examples" in compared and "token_accuracy p =" in compared
    assert [line for line in compared.splitlines() if line in ("base", "adapters/chunk")] == ["base", "adapters/chunk"]
    [row] = [line.split() for line in nlpapp(listed).splitlines() if line.startswith("chunk ")]
    assert row[2:4] == ["chunk", "chunk-tagger"]  # NAME KIND TASK HEAD ...

    nlpapp(uninstall)
    # from elsewhere: in the plugin's folder, its build metadata (nlpapp_chunk.egg-info) is still importable
    assert "chunk" not in {i["name"] for i in json.loads(nlpapp("nlpapp plugins list --json", cwd=tmp_path))}
