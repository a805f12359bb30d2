import pytest

from nlpapp.api import run
from nlpapp_qa import _locate


def ask(runtime, model, question, context, **options):
    [(_, output)] = run(runtime, "qa", [("q", {"question": question, "context": context})],
                        model=model, options=options)
    return output


def test_extractive_answers_carry_offsets(runtime):
    context = "Acme was founded by Jane Roe."
    out = ask(runtime, "fake-qa", "Who founded Acme?", context)
    assert context[out.start:out.end] == out.answer == "Jane"


def test_generative_answers_get_offsets_when_found_verbatim():
    context = "Acme was founded in 1990 by Jane Roe in Ohio."
    out = _locate("jane roe.", 0.8, context)
    assert (out.answer, out.start, out.end) == ("Jane Roe", 28, 36)
    assert _locate("Somebody else", 0.8, context).start is None


def test_generative_path_with_a_causal_model(runtime):
    out = ask(runtime, "fake-causal", "Who?", "Roe", max_answer_tokens=3)
    assert out.score == 0.5  # the fake's fixed mean token probability
    assert len(out.answer.split()) <= 3


def test_long_context_is_truncated_with_a_warning(runtime, capsys):
    context = " ".join(f"w{i}" for i in range(1000))
    ask(runtime, "fake-causal", "Who?", context, max_answer_tokens=30)
    err = capsys.readouterr().err
    assert "context of 1000 tokens truncated to 418 (582 dropped)" in err


def test_qa_with_a_tiny_real_extractive_model(runtime, tiny_model):
    context = "Acme was founded in 1990 by Jane Roe in Ohio."
    out = ask(runtime, str(tiny_model("extractive-qa")), "who founded acme?", context)
    assert context[out.start:out.end] == out.answer


def test_classifier_is_not_a_qa_model(runtime):
    from nlpapp.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError):
        ask(runtime, "fake-classifier", "q", "c")


def test_training_extractive_and_generative(runtime, tiny_model, tmp_path):
    import json

    from nlpapp.errors import InputError
    from nlpapp.training.config import TrainConfig
    from nlpapp.training.trainer import train

    rows = [{"question": "who founded acme?", "context": "acme was founded in 1990 by jane roe in ohio.",
             "answer": "jane roe"}] * 4
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for family in ("extractive-qa", "causal-lm"):
        cfg = TrainConfig(task="qa", model=str(tiny_model(family)), data=[str(data)], output=str(tmp_path / family),
                          batch_size=2, epochs=1, max_length=64, save_every=0)
        assert train(runtime, cfg, show_progress=False)["family"] == family
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "answer": "john smith"}) + "\n")
    cfg = TrainConfig(task="qa", model=str(tiny_model("extractive-qa")), data=[str(bad)], output=str(tmp_path / "x"),
                      batch_size=1, save_every=0)
    with pytest.raises(InputError, match="not in its context"):
        train(runtime, cfg, show_progress=False)
