"""``nlpapp new-plugin NAME --kind KIND``: the files of a working task plugin distribution.

One template per kind, each built on the matching stage base class: ``text-to-text``
(``TextToTextTask``, with an exact-match metric of its own), ``classification``
(``ClassificationTask``), ``tagging`` (``TokenTaggingTask``) and ``span``
(``SpanExtractionTask``). Each registers a task kind and a small dataset, and its tests
(the conformance suite plus its own, on fake and tiny local models) pass as soon as it is
installed. Each hook it uses is written the simplest correct way, to copy from."""

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
dependencies = ["nlpapp>={major_minor},<{next_minor}"{dependencies}]

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

An [nlpapp](https://pypi.org/project/nlpapp/) task plugin: the `{name}` task ({summary}).

```
nlpapp plugins install -e .        # or: pip install -e .
{usage}
pip install -e .[test] && pytest   # the conformance suite and this plugin's own tests
```

Training and evaluation data: {data}
'''

# --- text-to-text ------------------------------------------------------------------------------

TEXT_TO_TEXT = '''\
"""nlpapp plugin: the {name!r} task, text in and text out with a language model.

Each hook below is the simplest correct use of it: a task kind, a metric and a dataset."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import (DatasetSpec, MetricResult, MetricSpec, TextToTextTask, generation_options, hookimpl,
                    packaged_jsonl)

NLPAPP_HOOK_API = {hook_api}  # the hook API this plugin is written for


@dataclass
class {cls}Input:
    text: str  # the first field is the main input: positional arguments and --text-column fill it


@dataclass
class {cls}Output:
    text: str  # the first field gets the generated text; metrics compare it with the references


class {cls}(TextToTextTask):
    """TextToTextTask does the rest: causal or seq2seq models, the input cut to the model's
    window, batching, and training on the same prompt as predictions use."""

    name = "{name}"
    description = "{title} a text with a language model."
    default_model = "smollm2"  # a registered model (nlpapp models); --model takes any other
    Input = {cls}Input
    Output = {cls}Output
    Options = generation_options(max_new_tokens=64)  # --max-new-tokens, --temperature, ...
    target_fields = ("target",)  # what a training or evaluation example adds to the input
    # what nlpapp eval {name} reports by default; the core's bleu, chrf, ter, rouge, squad and
    # classification can be named here too
    metrics = ("{name}-exact",)
    fit_field = "text"  # the field cut to fit the model's window, if it is too long

    def prompt(self, item, options, model):
        return f"{title} the following text.\\n\\n{{item.text}}"

    def render(self, output):
        return output.text


def exact_match(predictions, references):
    """Share of predictions equal to one of their references (spaces at the ends ignored), x100."""
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

TEXT_TO_TEXT_SAMPLE = '''\
{"text": "The meeting has been moved to Friday.", "target": "The meeting is now on Friday."}
{"text": "Please send the report by noon.", "target": "Send the report before noon, please."}
{"text": "The shop is closed on Sundays.", "target": "On Sundays the shop is closed."}
'''

TEXT_TO_TEXT_TESTS = '''\
"""Tests of the {name} plugin with nlpapp's test kit (its pytest plugin gives the fixtures
``runtime``, ``cli`` and ``tiny_model``, and the fake models ``fake-causal`` and others)."""

import json

from nlpapp.testing.conformance import TaskConformance

from {module} import exact_match


class Test{cls}Conformance(TaskConformance):
    task = "{name}"
    model = "fake-causal"  # deterministic: answers with the prompt's words reversed
    tiny_family = "causal-lm"  # a tiny local Llama: the training and adapter checks run offline
    options = {{"max_new_tokens": 8}}  # a tiny model's answers are noise: short ones keep the tests fast
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
    assert json.loads(out)["text"].startswith("three two one")
    code, out, err = cli("eval", "{name}", "--data", "{name}-sample", "-m", "fake-causal", "--json",
                         "--bootstrap", "10")
    assert code == 0, err
    assert json.loads(out)["examples"] == 3
'''

# --- classification ----------------------------------------------------------------------------

CLASSIFICATION = '''\
"""nlpapp plugin: the {name!r} task, a label for each text from a classifier.

Each hook below is the simplest correct use of it: a task kind and a dataset. The metric
is the core's ``classification`` (accuracy and macro-F1), so the plugin registers none."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlpapp import ClassificationTask, DatasetSpec, hookimpl, packaged_jsonl

NLPAPP_HOOK_API = {hook_api}  # the hook API this plugin is written for


@dataclass
class {cls}Input:
    text: str  # the first field is the main input: positional arguments and --text-column fill it


@dataclass
class {cls}Output:
    label: str  # the first field is what metrics compare with the references
    score: float  # the label's probability
    scores: dict[str, float] = field(default_factory=dict)  # every label's probability


class {cls}(ClassificationTask):
    """ClassificationTask does the rest: a sequence-classification head (a bare encoder gets a
    new one when trained, with the labels of the training data), its training features and
    the ``classification`` metric."""

    name = "{name}"
    description = "Label a text with a classifier trained on {name} data."
    default_model = "minilm"  # a bare encoder: train a classifier on it first (see notes)
    Input = {cls}Input
    Output = {cls}Output
    target_fields = ("label",)  # what a training or evaluation example adds to the input
    notes = ("minilm has no classifier of its own: train one (nlpapp train {name} --data FILE "
             "--output DIR) or pass --model with a checkpoint fine-tuned for these labels.")

    def render(self, output):
        return f"{{output.label}}\\t(score {{output.score:.3f}})"


@hookimpl
def register_task_kinds(register):
    register({cls}())


@hookimpl
def register_datasets(register):
    register(DatasetSpec("{name}-sample", "{name}", "six labelled texts shipped with the plugin",
                         open=packaged_jsonl(__name__, "sample.jsonl")))
'''

CLASSIFICATION_SAMPLE = '''\
{"text": "The delivery was quick and the staff were wonderful.", "label": "positive"}
{"text": "Great service, I loved the new menu.", "label": "positive"}
{"text": "The best support team I have dealt with.", "label": "positive"}
{"text": "The order arrived late and the box was damaged. Awful.", "label": "negative"}
{"text": "Terrible app, it crashes every time I open it.", "label": "negative"}
{"text": "A waste of money; the worst purchase this year.", "label": "negative"}
'''

CLASSIFICATION_TESTS = '''\
"""Tests of the {name} plugin with nlpapp's test kit (its pytest plugin gives the fixtures
``runtime``, ``cli`` and ``tiny_model``, and the fake models ``fake-classifier`` and others)."""

import json

from nlpapp.testing.conformance import TaskConformance


class Test{cls}Conformance(TaskConformance):
    task = "{name}"
    model = "fake-classifier"  # deterministic: "positive" when a text has more positive words than negative
    tiny_family = "encoder"  # a tiny local BERT: training puts a new classifier on it, as on minilm
    examples = [{{"text": "Great service, I loved the new menu.", "label": "positive"}},
                {{"text": "Terrible app, it crashes every time I open it.", "label": "negative"}},
                {{"text": "The best support team I have dealt with.", "label": "positive"}},
                {{"text": "A waste of money; the worst purchase this year.", "label": "negative"}}]


def test_run_and_eval_through_the_cli(cli):
    code, out, err = cli("run", "{name}", "The staff were wonderful.", "-m", "fake-classifier", "--json")
    assert code == 0, err
    assert json.loads(out)["label"] == "positive"
    code, out, err = cli("eval", "{name}", "--data", "{name}-sample", "-m", "fake-classifier",
                         "--json", "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 6 and report["scores"]["accuracy"]["value"] == 100.0
'''

# --- tagging -----------------------------------------------------------------------------------

TAGGING = '''\
"""nlpapp plugin: the {name!r} task, a BIO tag for each word of a text and the spans they make.

Each hook below is the simplest correct use of it: a task kind and a dataset. It uses the
head and the metric of the nlpapp-token-classification plugin (a dependency) rather than
its own: a checkpoint fine-tuned for token classification then loads as it is, a bare
encoder gets that head when trained, and seqeval scores the spans. (docs/plugins.md, part
2, writes a tagging plugin with a head of its own.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from nlpapp import DatasetSpec, Entity, Head, TokenTaggingTask, hookimpl, packaged_jsonl

NLPAPP_HOOK_API = {hook_api}  # the hook API this plugin is written for


@dataclass
class {cls}Input:
    text: str  # its words are its whitespace-separated pieces: split punctuation off ("Acme Router .")


@dataclass
class {cls}Output:
    entities: list[Entity]  # the spans the tags make: text, label, character offsets, score
    tags: list[str] = field(default_factory=list)  # one BIO tag per word: what metrics compare


class {cls}(TokenTaggingTask):
    """TokenTaggingTask does the rest: a tag per word from the head, the spans the tags make,
    training labels on each word's first sub-word token, label ids from the data."""

    name = "{name}"
    description = "Tag each word of a text (BIO tags, as the {name} data does) and return the spans."
    heads = (Head.TOKEN_CLASSIFICATION,)  # the token-classification plugin's head (see above)
    default_model = "minilm"  # a bare encoder: train a tagger on it first (see notes)
    Input = {cls}Input
    Output = {cls}Output
    target_fields = ("tags",)  # one tag per word, space-separated or a list
    metrics = ("seqeval",)  # entity-level precision, recall and F1, from the token-classification plugin
    notes = ("minilm has no tagger of its own: train one (nlpapp train {name} --data FILE "
             "--output DIR) or pass --model with a checkpoint fine-tuned for these tags.")


@hookimpl
def register_task_kinds(register):
    register({cls}())


@hookimpl
def register_datasets(register):
    register(DatasetSpec("{name}-sample", "{name}", "six tagged sentences shipped with the plugin",
                         open=packaged_jsonl(__name__, "sample.jsonl")))
'''

TAGGING_SAMPLE = '''\
{"text": "Restart the Acme Router after the update .", "tags": "O O B-PRODUCT I-PRODUCT O O O O"}
{"text": "The Blue Kettle needs a new filter .", "tags": "O B-PRODUCT I-PRODUCT O O O O O"}
{"text": "We ordered two Solar Lamps and a Desk Fan .", "tags": "O O O B-PRODUCT I-PRODUCT O O B-PRODUCT I-PRODUCT O"}
{"text": "Charge the Zephyr scooter overnight .", "tags": "O O B-PRODUCT O O O"}
{"text": "Nothing here needs a new part .", "tags": "O O O O O O O"}
{"text": "Replace the Orbit Pump filter every month .", "tags": "O O B-PRODUCT I-PRODUCT O O O O"}
'''

# No fake tagger ships with nlpapp's test kit: the tests install one, through the same
# entry-point path a real plugin takes (as the token-classification plugin's tests do).
TAGGING_CONFTEST = '''\
"""A deterministic fake tagger, registered through the real plugin path (an installed
distribution with an ``nlpapp`` entry point), for the inference checks."""

import os

import pytest
from nlpapp.testing import install_plugin

FAKE_TAGGER = \'\'\'
from nlpapp import Head, Model, ModelPreset, hookimpl


class FakeTagger(Model):
    """A capitalised word that does not start the text is a product name; a run of them is
    one. Probability 0.9 for the tag chosen, 0.05 for each other."""

    head = Head.TOKEN_CLASSIFICATION
    labels = ("B-PRODUCT", "I-PRODUCT", "O")
    name = "fake-tagger"

    def tag_words(self, words):
        tagged = []
        for row in words:
            tags = []
            for i, word in enumerate(row):
                named = i > 0 and word[:1].isupper()
                tags.append("O" if not named else "I-PRODUCT" if tags and tags[-1] != "O" else "B-PRODUCT")
            tagged.append([{{label: 0.9 if label == tag else 0.05 for label in self.labels}} for tag in tags])
        return tagged


@hookimpl
def register_models(register):
    register(ModelPreset("fake-tagger", Head.TOKEN_CLASSIFICATION, "deterministic fake tagger", "tests",
                         "Apache-2.0", locate=lambda: "fake-tagger://"))


@hookimpl
def load_model(path):
    return FakeTagger() if path == "fake-tagger://" else None
\'\'\'


@pytest.fixture(scope="session")
def _tagger_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("fake-tagger-site")
    module = "{module}_fake_tagger"
    install_plugin(site, "fake-tagger", module, sources={{f"{{module}}.py": FAKE_TAGGER}})
    return site


@pytest.fixture(autouse=True)
def fake_tagger(_tagger_site, monkeypatch):
    monkeypatch.syspath_prepend(str(_tagger_site))  # this process, and the ones tests start
    paths = [str(_tagger_site), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
'''

TAGGING_TESTS = '''\
"""Tests of the {name} plugin with nlpapp's test kit (its pytest plugin gives the fixtures
``runtime``, ``cli`` and ``tiny_model``; conftest.py adds the fake model ``fake-tagger``)."""

import json

from nlpapp.testing.conformance import TaskConformance


class Test{cls}Conformance(TaskConformance):
    task = "{name}"
    model = "fake-tagger"  # deterministic: a capitalised word after the first is a product name
    tiny_family = "encoder"  # a tiny local BERT: training puts a new tagging head on it, as on minilm
    examples = [{{"text": "Restart the Acme Router after the update .", "tags": "O O B-PRODUCT I-PRODUCT O O O O"}},
                {{"text": "Charge the Zephyr scooter overnight .", "tags": "O O B-PRODUCT O O O"}},
                {{"text": "Nothing here needs a new part .", "tags": "O O O O O O O"}}]


def test_run_and_eval_through_the_cli(cli):
    code, out, err = cli("run", "{name}", "Plug the Acme  Router in .", "-m", "fake-tagger", "--json")
    assert code == 0, err
    [product] = json.loads(out)["entities"]
    assert (product["text"], product["label"], product["start"], product["end"]) == ("Acme  Router", "PRODUCT", 9, 21)
    code, out, err = cli("eval", "{name}", "--data", "{name}-sample", "-m", "fake-tagger", "--json",
                         "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 6 and report["scores"]["f1"]["value"] == 100.0
'''

# --- span --------------------------------------------------------------------------------------

SPAN = '''\
"""nlpapp plugin: the {name!r} task, the answer to a question as a span of a context.

Each hook below is the simplest correct use of it: a task kind and a dataset. The metric
is the core's ``squad`` (exact match and F1), so the plugin registers none."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import DatasetSpec, SpanExtractionTask, hookimpl, packaged_jsonl

NLPAPP_HOOK_API = {hook_api}  # the hook API this plugin is written for


@dataclass
class {cls}Input:
    question: str  # the first field is the main input: positional arguments fill it
    context: str  # --context on the command line; the answer is a span of it


@dataclass
class {cls}Output:
    answer: str  # the first field is what metrics compare with the references
    score: float  # the span's probability
    start: int | None = None  # character offsets of the answer in the context
    end: int | None = None


class {cls}(SpanExtractionTask):
    """SpanExtractionTask does the rest: an extractive-QA head (a start and an end position),
    long contexts read in overlapping windows, the answer found in its context for training."""

    name = "{name}"
    description = "Answer a question with a span of the given context."
    default_model = "minilm"  # a bare encoder: train a span head on it first (see notes)
    Input = {cls}Input
    Output = {cls}Output
    target_fields = ("answer",)  # what a training or evaluation example adds to the input
    metrics = ("squad",)
    notes = ("minilm has no span head of its own: train one (nlpapp train {name} --data FILE "
             "--output DIR) or pass --model with a checkpoint fine-tuned on SQuAD.")

    def render(self, output):
        return output.answer


@hookimpl
def register_task_kinds(register):
    register({cls}())


@hookimpl
def register_datasets(register):
    register(DatasetSpec("{name}-sample", "{name}", "four questions and answers shipped with the plugin",
                         open=packaged_jsonl(__name__, "sample.jsonl")))
'''

SPAN_SAMPLE = '''\
{"question": "When does the shop open?", "context": "The shop opens at nine on weekdays and at ten on Saturdays.", "answer": "nine"}
{"question": "Who repaired the roof?", "context": "The roof was repaired by Dana Smith in March.", "answer": "Dana Smith"}
{"question": "Where is the meeting?", "context": "The meeting is in room 4B on the second floor.", "answer": "room 4B"}
{"question": "What did the council approve?", "context": "On Tuesday the council approved a new skatepark.", "answer": "a new skatepark"}
'''

SPAN_TESTS = '''\
"""Tests of the {name} plugin with nlpapp's test kit (its pytest plugin gives the fixtures
``runtime``, ``cli`` and ``tiny_model``, and the fake models ``fake-qa`` and others)."""

import json

from nlpapp.testing.conformance import TaskConformance


class Test{cls}Conformance(TaskConformance):
    task = "{name}"
    model = "fake-qa"  # deterministic: the longest word of the context that is not in the question
    tiny_family = "encoder"  # a tiny local BERT: training puts a new span head on it, as on minilm
    examples = [{{"question": "Who repaired the roof?", "context": "The roof was repaired by Dana Smith in March.",
                  "answer": "Dana Smith"}},
                {{"question": "On Tuesday, what did the council approve?",
                  "context": "On Tuesday the council approved a new skatepark.", "answer": "skatepark"}}]


def test_run_and_eval_through_the_cli(cli):
    code, out, err = cli("run", "{name}", "What did the council approve?", "--context",
                         "The council approved a skatepark.", "-m", "fake-qa", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert (answer["answer"], answer["start"], answer["end"]) == ("skatepark", 23, 32)
    code, out, err = cli("eval", "{name}", "--data", "{name}-sample", "-m", "fake-qa", "--json", "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["examples"] == 4 and "f1" in report["scores"]
'''


# --- the kinds ---------------------------------------------------------------------------------

# kind -> the plugin module, its sample, its tests, other test files, extra dependencies,
# what the README says, and what the command reports
KINDS: dict[str, dict[str, str]] = {
    "text-to-text": {
        "plugin": TEXT_TO_TEXT, "sample": TEXT_TO_TEXT_SAMPLE, "tests": TEXT_TO_TEXT_TESTS,
        "summary": "text in, text out, with a language model",
        "usage": 'nlpapp run {name} "Some text."\n'
                 "nlpapp eval {name} --data {name}-sample\n"
                 "nlpapp train {name} --data train.jsonl --output adapters/{name}",
        "data": "JSONL with `text` and `target`, or map your columns with\n`--columns text=COL,target=COL`.",
        "registers": "metric {name}-exact"},
    "classification": {
        "plugin": CLASSIFICATION, "sample": CLASSIFICATION_SAMPLE, "tests": CLASSIFICATION_TESTS,
        "summary": "a label for each text, from a classifier",
        "usage": "nlpapp train {name} --data {name}-sample --output adapters/{name} {small}  # a classifier on minilm\n"
                 'nlpapp run {name} --adapter adapters/{name} "Some text."\n'
                 "nlpapp eval {name} --data {name}-sample --adapter adapters/{name}",
        "data": "JSONL with `text` and `label`, or map your columns with\n`--columns text=COL,label=COL`.",
        "registers": "metric: the core's classification"},
    "tagging": {
        "plugin": TAGGING, "sample": TAGGING_SAMPLE, "tests": TAGGING_TESTS, "conftest": TAGGING_CONFTEST,
        "dependencies": ', "nlpapp-token-classification>=0.1"',
        "summary": "a BIO tag for each word, and the spans they make",
        "usage": "nlpapp train {name} --data {name}-sample --output adapters/{name} {small}  # a tagger on minilm\n"
                 'nlpapp run {name} --adapter adapters/{name} "Restart the Acme Router ."\n'
                 "nlpapp eval {name} --data {name}-sample --adapter adapters/{name}",
        "data": "JSONL with `text` and `tags` (one BIO tag per whitespace-separated word,\n"
                "space-separated or a list), or map your columns with `--columns text=COL,tags=COL`.",
        "registers": "head and metric: the token-classification plugin's"},
    "span": {
        "plugin": SPAN, "sample": SPAN_SAMPLE, "tests": SPAN_TESTS,
        "summary": "the answer to a question, as a span of a context",
        "usage": "nlpapp train {name} --data {name}-sample --output adapters/{name} {small}  # a span head on minilm\n"
                 'nlpapp run {name} --adapter adapters/{name} "Who repaired the roof?" \\\n'
                 '    --context "The roof was repaired by Dana Smith in March."\n'
                 "nlpapp eval {name} --data {name}-sample --adapter adapters/{name}",
        "data": "JSONL with `question`, `context` and `answer` (a span of the\ncontext), "
                "or map your columns with `--columns question=COL,context=COL,answer=COL`.",
        "registers": "metric: the core's squad"},
}
DEFAULT_KIND = "text-to-text"


def files(name: str, kind: str = DEFAULT_KIND) -> dict[str, str]:
    """Relative path -> text of every file of plugin ``name`` of ``kind`` (one of ``KINDS``)."""
    if not NAME.match(name):
        raise NlpappError(f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
                          "starting with a letter (e.g. paraphrase, legal-ner)")
    if kind not in KINDS:
        raise NlpappError(f"unknown plugin kind {kind!r}; the kinds are: {', '.join(KINDS)}")
    template = KINDS[kind]
    module = "nlpapp_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    major, minor = (int(x) for x in __version__.split(".")[:2])
    values = {"name": name, "module": module, "cls": cls, "title": name.replace("-", " ").capitalize(),
              "hook_api": HOOK_API_VERSION, "major_minor": f"{major}.{minor}", "next_minor": f"{major}.{minor + 1}",
              "dependencies": template.get("dependencies", ""),
              "small": "--epochs 10 --lr 2e-3 --batch-size 2"}  # what a sample of a few examples needs
    readme = {key: template[key].format(**values) for key in ("summary", "usage", "data")}
    generated = {"pyproject.toml": PYPROJECT.format(**values), "README.md": README.format(**values, **readme),
                 f"{module}/__init__.py": template["plugin"].format(**values), f"{module}/sample.jsonl": template["sample"],
                 f"tests/test_{module[len('nlpapp_'):]}.py": template["tests"].format(**values)}
    if "conftest" in template:
        generated["tests/conftest.py"] = template["conftest"].format(**values)
    return generated


def registers(name: str, kind: str = DEFAULT_KIND) -> str:
    """What a generated plugin of ``kind`` registers besides its task and dataset, in words."""
    return KINDS[kind]["registers"].format(name=name)


def write(name: str, parent: Path, kind: str = DEFAULT_KIND) -> Path:
    """Write ``nlpapp-NAME/`` under ``parent``, whole or not at all."""
    from .runtime.atomic import atomic_folder

    target = parent / f"nlpapp-{name}"
    generated = files(name, kind)
    if target.exists():
        raise NlpappError(f"{target} already exists; choose another name or folder (--output)")
    with atomic_folder(target) as folder:
        for relative, text in generated.items():
            path = Path(folder) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return target
