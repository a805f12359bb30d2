"""ROUGE beyond English: a Unicode-aware tokenizer for non-Latin references, English left
equal to rouge-score, and rougeLsum on sentences split with pysbd."""

import warnings

import pytest

from nlpapp.evaluation import metrics
from nlpapp.evaluation.rouge_text import UnicodeTokenizer, split_sentences

TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def test_identical_chinese_texts_score_100():
    text = "今天天气很好。我们去公园散步吧。"
    result = metrics.rouge([text], [[text]])
    for t in TYPES:
        assert result.scores[t] == 100.0
    assert "tok=unicode" in result.signature and "stem=no" in result.signature


def test_unicode_tokenizer_words_and_characters():
    tok = UnicodeTokenizer()
    assert tok.tokenize("Привет, МИР!") == ["привет", "мир"]
    assert tok.tokenize("我们去公园") == ["我", "们", "去", "公", "园"]
    assert tok.tokenize("東京タワー in 2024") == ["東", "京", "タ", "ワ", "ー", "in", "2024"]
    assert tok.tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]  # vowel signs stay in the word
    assert tok.tokenize("สวัสดี") == ["ส", "วั", "ส", "ดี"]  # Thai marks join their character


def test_russian_and_greek_pair_equals_hand_computation():
    predictions = ["Кошка сидит на ковре", "Ο Γιάννης διαβάζει ένα βιβλίο"]
    references = [["Кошка сидела на ковре."], ["Ο γιάννης διάβασε ένα βιβλίο."]]
    # Russian: 3 of 4 words shared, 1 of 3 bigrams, LCS 3 -> F1 0.75, 1/3, 0.75
    # Greek (lowercased): 4 of 5 words, 2 of 4 bigrams, LCS 4 -> F1 0.8, 0.5, 0.8
    scores = metrics.rouge(predictions, references).scores
    assert scores["rouge1"] == pytest.approx(100 * (0.75 + 0.8) / 2)
    assert scores["rouge2"] == pytest.approx(100 * (1 / 3 + 0.5) / 2)
    assert scores["rougeL"] == pytest.approx(100 * (0.75 + 0.8) / 2)
    assert scores["rougeLsum"] == pytest.approx(scores["rougeL"])  # one sentence each


def test_english_unchanged_against_rouge_score():
    from rouge_score import rouge_scorer

    hyps = ["The cats were sitting on the mats, happily.", "Prices fell sharply on Monday — again."]
    refs = ["A cat sat on the mat.", "Oil prices dropped sharply on Monday."]
    scorer = rouge_scorer.RougeScorer(list(TYPES), use_stemmer=True)
    direct = [scorer.score(r, h) for h, r in zip(hyps, refs)]
    result = metrics.rouge(hyps, [[r] for r in refs])
    for t in TYPES:
        assert result.scores[t] == 100 * sum(d[t].fmeasure for d in direct) / len(direct)
    assert "tok=default" in result.signature and "stem=yes" in result.signature


def test_rougelsum_splits_one_line_summaries_into_sentences():
    from rouge_score import rouge_scorer

    prediction = "The cat sat on the mat. Then it slept."
    reference = "It slept. The cat sat on the mat."
    assert split_sentences(prediction) == "The cat sat on the mat.\nThen it slept."
    expected = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True).score(
        "It slept.\nThe cat sat on the mat.", "The cat sat on the mat.\nThen it slept.")["rougeLsum"].fmeasure
    result = metrics.rouge([prediction], [[reference]])
    assert result.scores["rougeLsum"] == 100 * expected
    assert result.scores["rougeLsum"] != result.scores["rougeL"]
    assert "lsum_split=pysbd-" in result.signature


def test_a_text_without_tokens_warns():
    with pytest.warns(UserWarning, match="no tokens under the default tokenizer"):
        result = metrics.rouge(["!!!"], [["The cat sat."]])
    assert result.scores["rouge1"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics.rouge(["The cat sat."], [["The cat sat."]])  # nothing to warn about


@pytest.mark.parametrize("prediction_form, reference_form", [("NFC", "NFD"), ("NFD", "NFC"), ("NFD", "NFD")])
def test_the_same_accented_text_scores_100_whatever_its_normal_form(prediction_form, reference_form):
    """"é" typed as e + a combining accent (macOS, some scrapers) is the same word as "é"."""
    import unicodedata

    text = "été au café, déjà vu"
    result = metrics.rouge([unicodedata.normalize(prediction_form, text)],
                           [[unicodedata.normalize(reference_form, text)]])
    assert all(result.scores[t] == 100.0 for t in TYPES)
    assert "norm=nfc" in result.signature and "tok=unicode" in result.signature
