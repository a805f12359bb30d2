import pytest

from nlpapp.api import run
from nlpapp.errors import InputError
from nlpapp_sentiment import SENTIMENT_LABELS, parse_labels


def label(runtime, model, *texts, task="text-classification", **options):
    return [out for _, out in run(runtime, task, [(str(i), {"text": t}) for i, t in enumerate(texts)],
                                  model=model, options=options)]


def test_classifier_head_labels(runtime):
    outs = label(runtime, "fake-classifier", "great film", "awful film")
    assert [o.label for o in outs] == ["positive", "negative"]
    assert outs[0].scores["positive"] == pytest.approx(outs[0].score)


def test_encoder_mode_picks_the_closest_label_description(runtime):
    # the fake encoder embeds character trigrams, so a text sharing a description's words is closest
    outs = label(runtime, "fake-encoder", "sport football match", "stock market shares",
                 labels="sports=football match sport,finance=stock market shares")
    assert [o.label for o in outs] == ["sports", "finance"]
    assert all(abs(sum(o.scores.values()) - 1) < 1e-6 for o in outs)


def test_sentiment_is_the_default_label_preset(runtime):
    assert parse_labels(None) is parse_labels("sentiment") is SENTIMENT_LABELS
    assert list(SENTIMENT_LABELS) == ["positive", "negative"]
    texts = ("I loved it, wonderful and great", "terrible, I hated it, a waste of time")
    default = label(runtime, "fake-encoder", *texts)
    assert [o.label for o in default] == ["positive", "negative"]
    assert label(runtime, "fake-encoder", *texts, labels="sentiment") == default
    assert label(runtime, "fake-encoder", *texts, task="sentiment") == default  # the old task name


def test_label_option_errors():
    with pytest.raises(InputError, match=r"at least two labels, or a preset's name \(sentiment\)"):
        parse_labels("positive")
    with pytest.raises(InputError, match="'production' has no description while other labels do"):
        parse_labels("acq=takeovers,crude=oil prices, production")
    with pytest.raises(InputError, match="empty label"):
        parse_labels("a,,b")
    assert parse_labels("positive,negative")["positive"][0].startswith("This is great")


def test_generative_models_are_refused(runtime):
    from nlpapp.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="sequence-classification, encoder"):
        label(runtime, "fake-causal", "x")
