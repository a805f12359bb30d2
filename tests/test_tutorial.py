"""The plugin tutorial (docs/plugins.md), followed to the letter in a fresh virtual
environment: its files, installed with `nlpapp plugins install`, listed, run, evaluated,
trained, tested with its own tests, and uninstalled."""

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nlpapp.testing import install_plugin

TUTORIAL = Path(__file__).parent.parent / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"```\w*\n# (nlpapp-shout/\S+)[^\n]*\n(.*?)```", re.S)


def tutorial_files() -> dict[str, str]:
    """Each code block that starts with a path comment is (a part of) that file."""
    files: dict[str, str] = {}
    for path, body in FILE_BLOCK.findall(TUTORIAL.read_text()):
        files[path] = files.get(path, "") + body + ("\n" if files.get(path) is not None else "")
    return files


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
    # a fresh environment that sees this one's packages (nlpapp, torch) but installs into itself
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
