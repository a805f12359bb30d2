"""BLEU tokenizes by the target language as sacrebleu does (zh: tok:zh), through the metric
and through ``nlpapp eval --target-lang``; corpus metrics take a varying number of
references as sacrebleu does; every core metric refuses inputs it cannot score, with a
typed error."""

import json
import math

import pytest

from nlpapp.errors import InputError, MetricDependencyError, MetricInputError
from nlpapp.evaluation import metrics

CORE = {spec.name: spec for spec in metrics.core_metrics()}  # what the core plugin registers

# Chinese is written without spaces: the 13a tokenizer sees one "word" per sentence
ZH_HYPS = ["今天天气很好。", "我喜欢吃苹果。", "他在北京工作了三年。", "这本书非常有意思。"]
ZH_REFS = ["今天天气非常好。", "我喜欢吃苹果。", "他在北京工作三年了。", "这本书很有意思。"]


def test_bleu_for_chinese_uses_sacrebleu_s_zh_tokenizer():
    import sacrebleu

    expected = sacrebleu.BLEU(trg_lang="zh").corpus_score(ZH_HYPS, [ZH_REFS]).score
    assert expected != sacrebleu.BLEU().corpus_score(ZH_HYPS, [ZH_REFS]).score  # the tokenizer matters here
    result = metrics.bleu(ZH_HYPS, [[r] for r in ZH_REFS], language="zh")
    assert result.scores["bleu"] == expected
    assert "tok:zh" in result.signature
    assert "tok:13a" in metrics.bleu(ZH_HYPS, [[r] for r in ZH_REFS], language="fr").signature


def test_the_bleu_spec_takes_the_language(runtime):
    import sacrebleu

    assert set(CORE) == {"bleu", "chrf", "ter", "rouge", "squad", "classification"}
    spec = runtime.registries.metrics.get("bleu")
    assert spec.language
    result = spec.compute(ZH_HYPS, [[r] for r in ZH_REFS], language="zh")
    assert result.scores["bleu"] == sacrebleu.BLEU(trg_lang="zh").corpus_score(ZH_HYPS, [ZH_REFS]).score


def test_eval_translation_target_lang_zh_scores_with_the_zh_tokenizer(cli, tmp_path):
    import sacrebleu

    data = tmp_path / "zh.jsonl"
    data.write_text("".join(json.dumps({"text": h, "translation": r}, ensure_ascii=False) + "\n"
                            for h, r in zip(ZH_HYPS, ZH_REFS)))
    code, out, err = cli("eval", "translation", "--data", str(data), "-m", "fake-seq2seq", "--target-lang", "zh",
                         "--json", "--bootstrap", "10")
    assert code == 0, err
    report = json.loads(out)
    predictions = [p["prediction"] for p in report["predictions"]]
    assert predictions == ZH_HYPS  # the fake model echoes a text without spaces
    bleu = report["scores"]["bleu"]
    assert bleu["value"] == sacrebleu.BLEU(trg_lang="zh").corpus_score(predictions, [ZH_REFS]).score
    assert bleu["value"] > 0 and "tok:zh" in bleu["signature"]


@pytest.mark.parametrize("language", ["ja", "ko"])
def test_a_missing_japanese_or_korean_tokenizer_says_what_to_install(language, monkeypatch):
    import sacrebleu.metrics.bleu as sacrebleu_bleu

    def missing(name):
        raise RuntimeError("extra dependencies are not installed")

    monkeypatch.setattr(sacrebleu_bleu, "_get_tokenizer", missing)
    with pytest.raises(MetricDependencyError, match=rf"pip install 'sacrebleu\[{language}\]'"):
        metrics.bleu(["a"], [["a"]], language=language)


# --- a varying number of references ---------------------------------------------------------------

HYPS = ["The cat sat on the mat.", "Oil prices fell sharply on Monday.", "Acme was founded by Jane Roe."]
VARYING = [["The cat is sitting on the mat.", "A cat sat on the mat."],
           ["Oil prices dropped sharply on Monday."],
           ["Jane Roe founded Acme.", "Acme's founder is Jane Roe.", "Acme was started by Jane Roe."]]


@pytest.mark.parametrize("name, make", [("bleu", "BLEU"), ("chrf", "CHRF"), ("ter", "TER")])
def test_a_varying_number_of_references_scores_as_sacrebleu(name, make):
    import sacrebleu

    streams = [[refs[i] if i < len(refs) else None for refs in VARYING] for i in range(3)]
    expected = getattr(sacrebleu, make)()
    score = expected.corpus_score(HYPS, streams).score
    result = getattr(metrics, name)(HYPS, VARYING)
    assert result.scores[name] == score
    assert "nrefs:var" in result.signature
    assert result.resample(range(len(HYPS)))[name] == pytest.approx(score, abs=1e-9)


# --- inputs a metric cannot score ---------------------------------------------------------------

BAD = {
    "more predictions than references": (["a", "b"], [["a"]], "2 prediction\\(s\\) but 1 list\\(s\\) of references"),
    "fewer predictions than references": (["a"], [["a"], ["b"]], "1 prediction\\(s\\) but 2 list\\(s\\) of references"),
    "no examples": ([], [], "no examples"),
    "a None prediction": ([None], [["a"]], "prediction 0 must be a string, got None"),
    "a NaN prediction": (["a", math.nan], [["a"], ["b"]], "prediction 1 must be a string, got float nan"),
    "a None reference": (["a"], [[None]], "a reference of example 0 must be a string, got None"),
    "a NaN reference": (["a"], [[math.nan]], "a reference of example 0 must be a string, got float nan"),
    "an example without references": (["a"], [[]], "example 0 has no reference"),
    "a string for the references": (["a"], "a", "references must be a list"),
    "a string for an example's references": (["a"], ["a"], "references of example 0 must be a list"),
    "None for the predictions": (None, [["a"]], "predictions must be a list, got None"),
}


@pytest.mark.parametrize("name", sorted(CORE))
@pytest.mark.parametrize("case", list(BAD))
def test_core_metrics_refuse_inputs_they_cannot_score(name, case):
    predictions, references, message = BAD[case]
    with pytest.raises(MetricInputError, match=message) as caught:
        CORE[name].compute(predictions, references)
    assert isinstance(caught.value, InputError) and str(caught.value).startswith(f"{name}: ")


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter", "squad", "classification"])
def test_the_metric_functions_check_their_inputs_too(name):
    with pytest.raises(MetricInputError, match="2 prediction\\(s\\) but 1 list\\(s\\) of references"):
        getattr(metrics, name)(["a", "b"], [["a"]])


@pytest.mark.parametrize("code", ["ZH", "zh-CN", "zh_TW"])
def test_a_language_code_with_a_region_or_capitals_picks_the_languages_tokenizer(code):
    from sacrebleu.metrics import BLEU

    expected = BLEU(trg_lang="zh").corpus_score(ZH_HYPS, [ZH_REFS]).score
    result = metrics.bleu(ZH_HYPS, [[r] for r in ZH_REFS], language=code)
    assert result.scores["bleu"] == expected and "tok:zh" in result.signature
