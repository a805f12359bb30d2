"""The CLI's light commands must not import torch or transformers."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "sacrebleu", "rouge_score")
PROBE = """
import json, sys
from nlpapp.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


@pytest.mark.parametrize("args", [["--help"], ["tasks"], ["plugins"], ["plugins", "--json"], ["models"],
                                  ["run", "--help"], ["run", "qa", "--help"], ["serve", "--help"]])
def test_light_commands_import_nothing_heavy(args, fake_plugin_site):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, proc.stderr


def test_console_script_runs(fake_plugin_site):
    proc = subprocess.run([sys.executable, "-m", "nlpapp", "tasks", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert {t["name"] for t in json.loads(proc.stdout)} >= {"text-generation", "question-answering", "translation"}


def test_running_a_base_model_does_not_import_peft(tiny_model, fake_plugin_site):
    """peft is for adapters; importing it costs a model's first load a tenth of a second or more."""
    args = ["run", "generation", "hello", "--model", str(tiny_model("causal-lm")), "--max-new-tokens", "2"]
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0 and "peft" not in report["heavy"] and "torch" in report["heavy"], proc.stderr
