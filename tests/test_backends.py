"""Backends: a plugin registers one (``register_backends``) and answers ``load_model`` for it;
``--backend NAME`` hands it the weights file itself, unconverted, while training keeps the
PyTorch weights. The llama.cpp plugin (plugins/llamacpp) is the real one; this plugin is
the smallest that exercises the same path."""

import json

import pytest

ECHO_PLUGIN = '''
from pathlib import Path

from nlpapp import BackendSpec, Model, hookimpl


class EchoModel(Model):
    """Answers every prompt with the file's text, the prompt and the path it was given."""

    def __init__(self, path):
        self.name = path
        self.path = path

    def generate(self, prompts, params, *, chat=True, stream=None):
        return [f"{Path(self.path).read_text().strip()} {p} from {self.path}" for p in prompts]


@hookimpl
def register_backends(register):
    register(BackendSpec("echo", "echoes (a test backend)", file_suffixes=(".echo",)))


@hookimpl
def load_model(path, head, options, labels):
    if options.backend == "echo" and path.endswith(".echo"):
        return EchoModel(path)
    return None
'''


@pytest.fixture
def echo_file(register_plugin, tmp_path):
    register_plugin("echo", ECHO_PLUGIN)
    path = tmp_path / "weights.echo"
    path.write_text("ECHO")
    return path


def test_the_chosen_backend_is_given_the_weights_file_itself(cli, echo_file):
    code, out, err = cli("run", "generation", "--model", str(echo_file), "--backend", "echo", "hi", "--json")
    assert code == 0, err
    assert json.loads(out)["response"] == f"ECHO hi from {echo_file.resolve()}"


def test_an_unknown_backend_is_one_line_with_a_did_you_mean(cli, echo_file):
    code, out, err = cli("run", "generation", "--model", str(echo_file), "--backend", "ecko", "hi")
    assert code != 0 and "Traceback" not in err
    assert "unknown backend 'ecko'; did you mean 'echo'?" in err


def test_a_backend_that_cannot_load_the_model_says_so_and_what_to_use(cli, echo_file, tiny_model):
    code, out, err = cli("run", "generation", "--model", str(tiny_model("causal-lm")), "--backend", "echo", "hi")
    assert code != 0 and "Traceback" not in err
    assert "backend 'echo' cannot load model" in err and "(it reads .echo files)" in err
    assert "--backend torch" in err


def test_without_the_backend_its_file_is_not_a_model(cli, echo_file):
    code, out, err = cli("run", "generation", "--model", str(echo_file), "hi")
    assert code != 0 and "is a file; pass a model folder, a .gguf file or a hub id" in err


def test_training_and_merging_load_the_pytorch_weights_whatever_the_backend(echo_file, tiny_model):
    from nlpapp import HFModel
    from nlpapp.api import Runtime

    runtime = Runtime.create(backend="echo")
    assert isinstance(runtime.models.load_uncached(str(tiny_model("causal-lm")), None), HFModel)
    assert runtime.registries.backends.get("torch").name == "torch"  # the core registers its own
