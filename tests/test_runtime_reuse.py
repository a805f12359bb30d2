"""One runtime serves many calls: merging an adapter writes a new model and leaves the
cached base as it was; per-call tokenizer settings never stay on the shared tokenizer."""

import json

from nlpapp.api import run
from nlpapp.types import GenerationParams


def _generate(runtime, model, adapter=None):
    records = [("a", {"prompt": "Oil prices fell as supply grew."}), ("b", {"prompt": "Who founded the company?"})]
    return [o.response for _, o in run(runtime, "generation", records, model=model, adapter=adapter,
                                       options={"max_new_tokens": 6})]


def test_merge_then_run_on_one_runtime_gives_the_base_output(runtime, tiny_model, tmp_path):
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.merge import merge
    from nlpapp.training.trainer import train

    base = str(tiny_model("causal-lm"))
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i}", "response": "acme acme acme"}) + "\n"
                            for i in range(8)))
    adapter = str(tmp_path / "adapter")
    train(runtime, TrainConfig(task="generation", model=base, data=[str(data)], output=adapter, epochs=3,
                               batch_size=4, lr=5e-2, save_every=0), show_progress=False)
    before = _generate(runtime, base)
    adapted = _generate(runtime, base, adapter)
    assert adapted != before  # the adapter changes the answers, so a leak would show

    merge(runtime.models, adapter, tmp_path / "merged")
    assert _generate(runtime, base) == before  # the cached base still serves the base weights
    assert _generate(runtime, base, adapter) == adapted
    assert _generate(runtime, str(tmp_path / "merged")) == adapted


def test_tokenizer_settings_hold_for_one_call_only(tiny_model, monkeypatch):
    from nlpapp.runtime.hf import load_hf_model
    from nlpapp.types import LoadOptions

    model = load_hf_model(str(tiny_model("seq2seq-lm")), None, LoadOptions(device="cpu"))
    model.tokenizer.src_lang = "en_XX"
    seen = []
    original = type(model.tokenizer).__call__

    def spy(self, *args, **kwargs):
        seen.append(getattr(self, "src_lang", None))
        return original(self, *args, **kwargs)

    # monkeypatch removes the attribute afterwards: assigning the inherited one back would leave
    # the class its own __call__, hiding later spies on the base class
    monkeypatch.setattr(type(model.tokenizer), "__call__", spy)
    model.generate(["a text"], GenerationParams(max_new_tokens=2, tokenizer_settings={"src_lang": "fr_XX"}))
    monkeypatch.undo()
    assert seen == ["fr_XX"]  # the call tokenized with the setting
    assert model.tokenizer.src_lang == "en_XX"  # and the shared tokenizer has its own again


def test_translation_asks_for_the_source_language_per_call(runtime, tiny_model):
    from nlpapp_translation import seq2seq_inputs

    class Tokenizer:
        src_lang = "en"

        def get_lang_id(self, code):
            return {"de": 7}[code]

    class M2M:
        model_type = "m2m_100"
        tokenizer = Tokenizer()

    params = GenerationParams()
    seq2seq_inputs(M2M(), ["Hallo"], "fr", "de", params)
    assert params.tokenizer_settings == {"src_lang": "fr"} and params.extra["forced_bos_token_id"] == 7
    assert M2M.tokenizer.src_lang == "en"
