import pytest

from nlpapp.errors import DuplicateNameError, NlpappError, UnknownNameError
from nlpapp.registry import Registry
from nlpapp.head import Head
from nlpapp.types import ModelPreset


def preset(name: str) -> ModelPreset:
    return ModelPreset(name, Head.ENCODER, "d", "s", "MIT", locate=lambda: "/x")


def test_duplicate_names_both_plugins():
    registry = Registry("model", ModelPreset)
    registry.add(preset("minilm"), "plugin-a")
    with pytest.raises(DuplicateNameError, match="'plugin-a' and plugin 'plugin-b'"):
        registry.add(preset("minilm"), "plugin-b")


def test_unknown_name_suggests_close_match():
    registry = Registry("model", ModelPreset)
    registry.add(preset("smollm2"), "p")
    with pytest.raises(UnknownNameError, match="did you mean 'smollm2'"):
        registry.get("smolm2")


def test_unknown_name_without_close_match_lists_known():
    registry = Registry("model", ModelPreset)
    registry.add(preset("smollm2"), "p")
    with pytest.raises(UnknownNameError, match="known: smollm2"):
        registry.get("zzz")


def test_wrong_type_is_refused_naming_plugin():
    registry = Registry("model", ModelPreset)
    with pytest.raises(NlpappError, match="plugin 'p' registered a str as a model"):
        registry.add("smollm2", "p")


def test_records_plugin_of_each_name():
    registry = Registry("model", ModelPreset)
    registry.add(preset("a"), "p1")
    registry.add(preset("b"), "p2")
    assert registry.plugin_of("b") == "p2"
    assert registry.by_plugin("p1") == ["a"]
