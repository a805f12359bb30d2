"""Model heads are registered through a hook, the built-in ones included, so a plugin can
bring a head the core does not know: it is detected, loaded, trained through the
``load_model`` hook, saved as an adapter and loaded again."""

import json

import pytest

from nlpapp import Head, HFModel, ModelHead, TaskKind, hookimpl
from nlpapp.errors import UnknownNameError

TAGGER_PLUGIN = '''
from dataclasses import dataclass

from nlpapp import IGNORE, HFModel, ModelHead, TaskKind, hookimpl


class Tagger(HFModel):
    def tags(self, texts):
        encoded = self.encode(texts)
        ids = self.forward(encoded).logits.argmax(-1).tolist()
        return [[self.config.id2label[i] for i in row] for row in ids]


class WordTagHead(ModelHead):
    name = "word-tags"
    auto_class = "AutoModelForTokenClassification"
    model_class = Tagger
    architectures = ("ForTokenClassification",)
    peft_task_type = "TOKEN_CLS"
    uses_labels = True
    new_modules = ("classifier",)


@dataclass
class In:
    text: str


@dataclass
class Out:
    tags: str


class CapsTask(TaskKind):
    name = "caps"
    description = "tag every token as CAP or LOW"
    heads = ("word-tags",)
    default_model = "fake-causal"
    Input, Output = In, Out
    target_fields = ("tags",)

    def training_head(self, base):
        return "word-tags"

    def label_names(self, targets):
        return targets["tags"].split()

    def training_features(self, item, targets, ctx):
        encoded = ctx.model.tokenizer(item.text.split(), is_split_into_words=True)
        tags = targets["tags"].split()
        labels = [IGNORE if w is None else ctx.label_ids[tags[w]] for w in encoded.word_ids()]
        return [{"input_ids": encoded["input_ids"], "labels": labels}]

    def predict(self, model, inputs, options, stream=None):
        return [Out(" ".join(t)) for t in model.tags([i.text for i in inputs])]


@hookimpl
def register_heads(register):
    register(WordTagHead())


@hookimpl
def register_task_kinds(register):
    register(CapsTask())
'''


def test_the_built_in_heads_come_through_the_hook_from_the_core_plugin(runtime):
    heads = runtime.registries.heads
    for name in (Head.CAUSAL_LM, Head.SEQ2SEQ_LM, Head.SEQUENCE_CLASSIFICATION, Head.EXTRACTIVE_QA, Head.ENCODER):
        assert name in heads and heads.plugin_of(name) == "nlpapp.core"
    assert isinstance(heads.get(Head.CAUSAL_LM), ModelHead)


def test_a_plugin_head_trains_as_an_adapter_and_loads_back(register_plugin, cli, tiny_model, tmp_path):
    register_plugin("word-tags", TAGGER_PLUGIN)
    data = tmp_path / "caps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "Acme rose", "tags": "CAP LOW"}, {"text": "the Gulf", "tags": "LOW CAP"}] * 4))
    adapter = tmp_path / "caps-adapter"
    code, out, err = cli("train", "caps", "--data", str(data), "-m", str(tiny_model("encoder")), "--output",
                         str(adapter), "--epochs", "1", "--batch-size", "4", "--no-progress", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["head"] == "word-tags" and manifest["labels"] == ["CAP", "LOW"]
    code, out, err = cli("run", "caps", "Acme rose", "--adapter", str(adapter), "--json")
    assert code == 0, err
    assert set(json.loads(out)["tags"].split()) <= {"CAP", "LOW"}
    code, out, _ = cli("adapters", "list", "--json")
    assert [a["task"] for a in json.loads(out) if a["name"] == "caps-adapter"] == ["caps"]


def test_a_head_is_detected_only_once_a_plugin_registers_it(isolated_runtime, tiny_model):
    from nlpapp.runtime.heads import BUILTIN_HEADS

    class TaggerHead(ModelHead):
        name = "token-tags"
        auto_class = "AutoModelForTokenClassification"
        model_class = HFModel
        architectures = ("ForTokenClassification",)

    class Plugin:
        @hookimpl
        def register_heads(self, register):
            register(TaggerHead())

    folder = tiny_model("token-classification")
    assert isolated_runtime().models.load(str(folder)).head == Head.ENCODER  # unknown: a bare encoder
    model = isolated_runtime(Plugin()).models.load(str(folder))
    assert model.head == "token-tags" and type(model) is HFModel
    assert len(BUILTIN_HEADS) == 5


def test_two_plugins_registering_one_head_name_are_both_named(isolated_runtime, capsys):
    from nlpapp.runtime.heads import EncoderHead

    class Plugin:
        @hookimpl
        def register_heads(self, register):
            register(EncoderHead())

    runtime = isolated_runtime(Plugin())
    losers = [info for info in runtime.plugins.plugins.values() if info.conflicts]
    assert len(losers) == 1  # the plugin stays loaded (its other names kept) and is named as the loser
    assert "head 'encoder' is registered by both plugin 'nlpapp.core' and plugin" in losers[0].conflicts[0]
    assert runtime.registries.heads.plugin_of("encoder") == "nlpapp.core"  # the core's stays


def test_a_backend_without_a_torch_module_cannot_be_trained(cli, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n' * 4)
    code, _, err = cli("train", "generation", "--data", str(data), "-m", "fake-causal", "--output",
                       str(tmp_path / "out"), "--no-progress")
    assert code == 1
    assert "nlpapp: error: model 'fake-causal' comes from a backend (FakeModel) that cannot be trained" in err
    assert "Traceback" not in err


def test_a_task_whose_head_no_plugin_registers_is_refused_for_training(isolated_runtime, tiny_model, tmp_path):
    from dataclasses import dataclass

    from nlpapp.training.config import TrainConfig
    from nlpapp.training.trainer import train

    @dataclass
    class In:
        text: str

    class Orphan(TaskKind):
        name, description, heads, default_model = "orphan", "d", ("no-such-head",), "fake-causal"
        Input = Output = In
        target_fields = ("label",)

        def training_head(self, base):
            return "no-such-head"

    class Plugin:
        @hookimpl
        def register_task_kinds(self, register):
            register(Orphan())

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n' * 4)
    config = TrainConfig(task="orphan", model=str(tiny_model("encoder")), data=[str(data)], output=str(tmp_path / "o"))
    with pytest.raises(Exception, match="trains a 'no-such-head' head, which no installed plugin registers"):
        train(isolated_runtime(Plugin()), config, show_progress=False)


def test_an_unknown_head_name_has_a_did_you_mean(runtime):
    with pytest.raises(UnknownNameError, match="did you mean 'causal-lm'"):
        runtime.registries.heads.get("causal-llm")


def test_a_merged_plugin_head_is_found_again(register_plugin, cli, tiny_model, tmp_path):
    """A merge writes a standalone model that still has the plugin's head, not whichever
    head claims its transformers architecture first."""
    register_plugin("word-tags", TAGGER_PLUGIN)
    data = tmp_path / "caps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "Acme rose", "tags": "CAP LOW"}, {"text": "the Gulf", "tags": "LOW CAP"}] * 4))
    adapter, merged = tmp_path / "caps", tmp_path / "merged"
    code, _, err = cli("train", "caps", "--data", str(data), "-m", str(tiny_model("encoder")), "--output",
                       str(adapter), "--epochs", "1", "--batch-size", "4", "--no-progress")
    assert code == 0, err
    code, _, err = cli("adapters", "merge", str(adapter), "--output", str(merged))
    assert code == 0, err
    assert json.loads((merged / "config.json").read_text())["nlpapp_head"] == "word-tags"
    code, out, err = cli("run", "caps", "Acme rose", "-m", str(merged), "--json")
    assert code == 0, err
    assert set(json.loads(out)["tags"].split()) <= {"CAP", "LOW"}
