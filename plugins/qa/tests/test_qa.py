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
