"""Translation: text + source and target language -> text.

Seq2seq models get the language codes or prefix their family expects (T5 prefixes,
mBART-50 and NLLB language tokens, Marian pair models as they are); causal models are
prompted."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import DatasetSpec, TaskFolder, GenerationParams, InputError, MetricSpec, Head, TaskKind, TaskOption, hookimpl
from nlpapp.datasets import packaged_jsonl
from nlpapp.task import generation_options, generation_params
from nlpapp.runtime.hf import tokenizer_settings
from nlpapp.training import features

# ISO 639-1 -> (English name, mBART-50 code, NLLB/FLORES-200 code)
LANGUAGES = {
    "ar": ("Arabic", "ar_AR", "arb_Arab"), "cs": ("Czech", "cs_CZ", "ces_Latn"),
    "de": ("German", "de_DE", "deu_Latn"), "en": ("English", "en_XX", "eng_Latn"),
    "es": ("Spanish", "es_XX", "spa_Latn"), "fi": ("Finnish", "fi_FI", "fin_Latn"),
    "fr": ("French", "fr_XX", "fra_Latn"), "hi": ("Hindi", "hi_IN", "hin_Deva"),
    "it": ("Italian", "it_IT", "ita_Latn"), "ja": ("Japanese", "ja_XX", "jpn_Jpan"),
    "ko": ("Korean", "ko_KR", "kor_Hang"), "nl": ("Dutch", "nl_XX", "nld_Latn"),
    "pl": ("Polish", "pl_PL", "pol_Latn"), "pt": ("Portuguese", "pt_XX", "por_Latn"),
    "ro": ("Romanian", "ro_RO", "ron_Latn"), "ru": ("Russian", "ru_RU", "rus_Cyrl"),
    "sv": ("Swedish", "sv_SE", "swe_Latn"), "tr": ("Turkish", "tr_TR", "tur_Latn"),
    "uk": ("Ukrainian", "uk_UA", "ukr_Cyrl"), "zh": ("Chinese", "zh_CN", "zho_Hans"),
}
PROMPT = ("Translate the following {source} text into {target}. Reply with the {target} "
          "translation only.\n\n{text}")


@dataclass
class TranslationInput:
    text: str


@dataclass
class TranslationOutput:
    translation: str


def language(code: str, option: str) -> tuple[str, str, str]:
    if code not in LANGUAGES:
        raise InputError(f"--{option} {code!r} is not a known language code; use one of: "
                         f"{', '.join(sorted(LANGUAGES))}")
    return LANGUAGES[code]


class Translation(TaskKind):
    name = "translation"
    description = "Translate text from one language to another."
    heads = (Head.SEQ2SEQ_LM, Head.CAUSAL_LM)
    default_model = "qwen-coder"
    Input = TranslationInput
    Output = TranslationOutput
    options = (
        TaskOption("source_lang", str, "en", "Source language (ISO 639-1 code)."),
        TaskOption("target_lang", str, None, "Target language (ISO 639-1 code); required."),
    ) + generation_options(256)
    notes = ("The default qwen-coder is best-effort: gist-level French and Chinese, poor German; "
             "pass --model with a translation model (Marian, NLLB, mBART, T5) for quality.")

    def predict(self, model, inputs, options, stream=None):
        prompts, params = self._prompts(model, [item.text for item in inputs], options)
        return [TranslationOutput(out.strip()) for out in model.generate(prompts, params)]

    def _prompts(self, model, texts: list[str], options) -> tuple[list[str], GenerationParams]:
        if not options.get("target_lang"):
            raise InputError("translation needs --target-lang (for example --target-lang fr)")
        source_code, target_code = options.get("source_lang") or "en", options["target_lang"]
        source, target = language(source_code, "source-lang"), language(target_code, "target-lang")
        params = generation_params(options)
        if model.head == Head.CAUSAL_LM:
            return [PROMPT.format(source=source[0], target=target[0], text=t) for t in texts], params
        return seq2seq_inputs(model, texts, source_code, target_code, params)

    target_fields = ("translation",)
    metrics = ("bleu", "chrf", "ter")

    def training_features(self, item, targets, ctx):
        [prompt], params = self._prompts(ctx.model, [item.text], ctx.options)
        if ctx.head == Head.SEQ2SEQ_LM:
            with tokenizer_settings(ctx.model.tokenizer, params.tokenizer_settings):
                return [features.seq2seq(ctx.model.tokenizer, prompt, targets["translation"], ctx.max_length)]
        return [features.causal_lm(ctx.model.tokenizer, prompt, targets["translation"], ctx.max_length)]

    def render(self, output: TranslationOutput) -> str:
        return output.translation


def seq2seq_inputs(model, texts: list[str], source_code: str, target_code: str,
                   params: GenerationParams) -> tuple[list[str], GenerationParams]:
    """Prefix the text or set language tokens the way the model's family expects."""
    source, target = LANGUAGES[source_code], LANGUAGES[target_code]
    if model.model_type in ("t5", "mt5", "umt5"):
        return [f"translate {source[0]} to {target[0]}: {t}" for t in texts], params
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return texts, params
    if "nllb" in type(tokenizer).__name__.lower():
        params.tokenizer_settings["src_lang"] = source[2]  # for this call only
        params.extra["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(target[2])
    elif model.model_type == "mbart":
        params.tokenizer_settings["src_lang"] = source[1]  # for this call only
        params.extra["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(target[1])
    elif model.model_type == "m2m_100":
        params.tokenizer_settings["src_lang"] = source_code  # for this call only
        params.extra["forced_bos_token_id"] = tokenizer.get_lang_id(target_code)
    return texts, params  # Marian and other pair models translate as they are


@hookimpl
def register_task_kinds(register):
    register(Translation())


@hookimpl
def register_metrics(register):
    from nlpapp.evaluation import metrics

    register(MetricSpec("bleu", "corpus BLEU from sacrebleu (13a tokenizer)", metrics.bleu))
    register(MetricSpec("chrf", "chrF from sacrebleu", metrics.chrf))
    register(MetricSpec("ter", "translation edit rate from sacrebleu", metrics.ter, higher_is_better=False))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("translation-en-fr-sample", "translation", "10 English sentences with French references, written for nlpapp (use --target-lang fr).",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))


@hookimpl
def register_task_folders(register):
    from pathlib import Path

    register(TaskFolder("translation examples", str(Path(__file__).parent / "tasks")))
