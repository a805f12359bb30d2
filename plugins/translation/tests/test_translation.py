import pytest

from nlpapp.api import run
from nlpapp.errors import InputError
from nlpapp.types import GenerationParams
from nlpapp_translation import seq2seq_inputs


def translate(runtime, model, text, **options):
    [(_, output)] = run(runtime, "translation", [("t", {"text": text})], model=model, options=options)
    return output.translation


def test_causal_models_are_prompted_with_language_names(runtime):
    # the fake causal model reverses its prompt, so the prompt's words come back
    out = translate(runtime, "fake-causal", "bonjour", source_lang="en", target_lang="fr", max_new_tokens=200)
    assert "French" in out and "English" in out and "bonjour" in out


def test_target_language_is_required(runtime):
    with pytest.raises(InputError, match="--target-lang"):
        translate(runtime, "fake-causal", "hi")


def test_unknown_language_code(runtime):
    with pytest.raises(InputError, match="'xx' is not a known language code"):
        translate(runtime, "fake-causal", "hi", target_lang="xx")


def test_t5_gets_its_prefix(runtime, tiny_model):
    model = runtime.models.load(str(tiny_model("seq2seq-lm")))
    prompts, _ = seq2seq_inputs(model, ["hello"], "en", "de", GenerationParams())
    assert prompts == ["translate English to German: hello"]
    assert isinstance(translate(runtime, str(tiny_model("seq2seq-lm")), "hello", target_lang="de",
                                max_new_tokens=4), str)
