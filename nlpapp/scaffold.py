"""``nlpapp new-plugin NAME``: the files of a working task plugin distribution.

The generated plugin registers a text-to-text task kind, an exact-match metric and a
three-example dataset, and its tests (the conformance suite plus its own) pass as soon as
it is installed. Each hook it uses is written the simplest correct way, to copy from."""

from __future__ import annotations

import re
from pathlib import Path

from . import __version__
from .errors import NlpappError
from .hookspecs import HOOK_API_VERSION

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "nlpapp-{name}"
version = "0.1.0"
description = "nlpapp task plugin: {name}"
readme = "README.md"
requires-python = ">=3.10"
# the nlpapp versions this plugin is written for; nlpapp refuses to load it elsewhere
dependencies = ["nlpapp>={major_minor},<{next_minor}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# how nlpapp finds the plugin: the group is "nlpapp", the name is the plugin's name
[project.entry-points.nlpapp]
{name} = "{module}"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools.package-data]
{module} = ["*.jsonl"]
'''

README = '''\
# nlpapp-{name}

An [nlpapp](https://pypi.org/project/nlpapp/) task plugin: the `{name}` task (text in,
text out, with a language model).

```
nlpapp plugins install -e .        # or: pip install -e .
nlpapp run {name} "Some text."
nlpapp eval {name} --data {name}-sample
nlpapp train {name} --data train.jsonl --output adapters/{name}
pip install -e .[test] && pytest   # the conformance suite and this plugin's own tests
```

Training and evaluation data: JSONL with `text` and `target`, or map your columns with
`--columns text=COL,target=COL`.
'''

PLUGIN = '''\
"""nlpapp plugin: the {name!r} task, text in and text out with a language model.

Each hook below is the simplest correct use of it: a task kind, a metric and a dataset."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import DatasetSpec, MetricSpec, Head, TaskKind, hookimpl
from nlpapp.datasets import packaged_jsonl
from nlpapp.task import generation_options, generation_params
from nlpapp.training import features

NLPAPP_HOOK_API = {hook_api}  # the hook API this plugin is written for
PROMPT = "{title} the following text.\\n\\n{{text}}"  # the same prompt for predicting and training


@dataclass
class {cls}Input:
    text: str  # the first field is the main input: positional arguments and --text-column fill it


@dataclass
class {cls}Output:
    text: str  # the first field is what metrics compare with the references


class {cls}(TaskKind):
    name = "{name}"
    description = "{title} a text with a language model."
    heads = (Head.CAUSAL_LM, Head.SEQ2SEQ_LM)
    default_model = "smollm2"
    Input = {cls}Input
    Output = {cls}Output
    options = generation_options(max_new_tokens=64)  # --max-new-tokens, --temperature, ...
    target_fields = ("target",)  # what a training or evaluation example adds to the input
    metrics = ("{name}-exact",)  # what nlpapp eval {name} reports by default

    def predict(self, model, inputs, options, stream=None):
        prompts = [PROMPT.format(text=item.text) for item in inputs]
        texts = model.generate(prompts, generation_params(options), stream=stream)
        return [{cls}Output(text.strip()) for text in texts]

    def render(self, output):
        return output.text

    def training_features(self, item, targets, ctx):
        prompt = PROMPT.format(text=item.text)
        if ctx.head == Head.SEQ2SEQ_LM:
            return [features.seq2seq(ctx.model.tokenizer, prompt, targets["target"], ctx.max_length)]
        return [features.causal_lm(ctx.model.tokenizer, prompt, targets["target"], ctx.max_length)]


def exact_match(predictions, references):
    """Share of predictions equal to one of their references (spaces at the ends ignored), x100."""
    from nlpapp.evaluation.metrics import MetricResult

    hits = [float(p.strip() in {{r.strip() for r in refs}}) for p, refs in zip(predictions, references)]

    def scores(indices):  # rescoring a resample is how nlpapp computes the bootstrap intervals
        indices = list(indices)
        return {{"exact_match": 100 * sum(hits[i] for i in indices) / len(indices)}}

    return MetricResult(scores(range(len(hits))), "{name}-exact:strip=yes|multi_ref=any", scores)


@hookimpl
def register_task_kinds(register):
    register({cls}())


@hookimpl
def register_metrics(register):
    register(MetricSpec("{name}-exact", "exact match with a reference, x100", exact_match))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("{name}-sample", "{name}", "three examples shipped with the plugin",
                         open=packaged_jsonl(__name__, "sample.jsonl")))
'''

SAMPLE = '''\
{"text": "The meeting has been moved to Friday.", "target": "The meeting is now on Friday."}
{"text": "Please send the report by noon.", "target": "Send the report before noon, please."}
{"text": "The shop is closed on Sundays.", "target": "On Sundays the shop is closed."}
'''

TESTS = '''\
"""Tests of the {name} plugin with nlpapp's test kit (its pytest plugin gives the fixtures
``runtime``, ``cli`` and ``tiny_model``, and the fake models ``fake-causal`` and others)."""

import json

from nlpapp.testing.conformance import TaskConformance

from {module} import exact_match


class Test{cls}Conformance(TaskConformance):
    task = "{name}"
    model = "fake-causal"
    tiny_family = "causal-lm"  # a tiny local Llama: the training and adapter checks run offline
    examples = [{{"text": "The meeting has been moved to Friday.", "target": "The meeting is now on Friday."}},
                {{"text": "Please send the report by noon.", "target": "Send the report before noon, please."}},
                {{"text": "The shop is closed on Sundays.", "target": "On Sundays the shop is closed."}}]


def test_exact_match_ignores_surrounding_spaces_and_takes_any_reference():
    result = exact_match([" a b ", "c", "d"], [["a b"], ["x", "c"], ["e"]])
    assert round(result.scores["exact_match"], 2) == 66.67
    assert result.resample([2, 2, 2])["exact_match"] == 0.0


def test_run_and_eval_through_the_cli(cli):
    code, out, err = cli("run", "{name}", "one two three", "-m", "fake-causal", "--json")
    assert code == 0, err
    assert "text" in json.loads(out)
    code, out, err = cli("eval", "{name}", "--data", "{name}-sample", "-m", "fake-causal", "--json",
                         "--bootstrap", "10")
    assert code == 0, err
    assert json.loads(out)["examples"] == 3
'''


def files(name: str) -> dict[str, str]:
    """Relative path -> text of every file of plugin ``name``."""
    if not NAME.match(name):
        raise NlpappError(f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
                          "starting with a letter (e.g. paraphrase, legal-ner)")
    module = "nlpapp_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    major, minor = (int(x) for x in __version__.split(".")[:2])
    values = {"name": name, "module": module, "cls": cls, "title": name.replace("-", " ").capitalize(),
              "hook_api": HOOK_API_VERSION, "major_minor": f"{major}.{minor}", "next_minor": f"{major}.{minor + 1}"}
    return {"pyproject.toml": PYPROJECT.format(**values), "README.md": README.format(**values),
            f"{module}/__init__.py": PLUGIN.format(**values), f"{module}/sample.jsonl": SAMPLE,
            f"tests/test_{module[len('nlpapp_'):]}.py": TESTS.format(**values)}


def write(name: str, parent: Path) -> Path:
    """Write ``nlpapp-NAME/`` under ``parent``, whole or not at all."""
    from .runtime.atomic import atomic_folder

    target = parent / f"nlpapp-{name}"
    generated = files(name)
    if target.exists():
        raise NlpappError(f"{target} already exists; choose another name or folder (--output)")
    with atomic_folder(target) as folder:
        for relative, text in generated.items():
            path = Path(folder) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return target
