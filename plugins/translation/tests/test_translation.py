import pytest

from nlpapp.api import run
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
    from nlpapp import OptionError

    with pytest.raises(OptionError, match="option 'target_lang' is required: .* \\(on the command line: --target-lang fr\\)"):
        translate(runtime, "fake-causal", "hi")


def test_unknown_language_code(runtime):
    from nlpapp import OptionError

    with pytest.raises(OptionError, match="option 'target_lang' must be one of the language codes ar, .*, got 'xx'"):
        translate(runtime, "fake-causal", "hi", target_lang="xx")


def test_t5_gets_its_prefix(runtime, tiny_model):
    model = runtime.models.load(str(tiny_model("seq2seq-lm")))
    prompts, _ = seq2seq_inputs(model, ["hello"], "en", "de", GenerationParams())
    assert prompts == ["translate English to German: hello"]
    assert isinstance(translate(runtime, str(tiny_model("seq2seq-lm")), "hello", target_lang="de",
                                max_new_tokens=4), str)


def test_training_a_seq2seq_model_uses_the_t5_prefix(runtime, tiny_model, tmp_path):
    import json

    from nlpapp.task import TrainingContext
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.trainer import train
    from nlpapp.head import Head
    from nlpapp_translation import Translation

    model = runtime.models.load(str(tiny_model("seq2seq-lm")))
    ctx = TrainingContext(model, Head.SEQ2SEQ_LM, 64, Translation.Options(source_lang="en", target_lang="fr"))
    [feature] = Translation().training_features(Translation.Input("the weather"), {"translation": "le temps"}, ctx)
    assert model.tokenizer.decode(feature["input_ids"], skip_special_tokens=True).startswith("translate english to")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": "the weather is nice", "translation": "il fait beau"}) + "\n"
                            for _ in range(4)))
    cfg = TrainConfig(task="translation", model=str(tiny_model("seq2seq-lm")), data=[str(data)],
                      output=str(tmp_path / "a"), batch_size=2, epochs=1, save_every=0,
                      options={"source_lang": "en", "target_lang": "fr"})
    assert train(runtime, cfg, show_progress=False)["metrics"]["steps"] == 2
