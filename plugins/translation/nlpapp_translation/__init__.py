"""Translation: text + source and target language -> text.

Seq2seq models get the language codes or prefix their family expects (T5 prefixes,
mBART-50 and NLLB language tokens, Marian pair models as they are); causal models are
prompted."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import (DatasetSpec, TrainingRecipe, GenerationParams, Head, OptionError, TaskFolder, TextToTextTask,
                    generation_options, hookimpl, option, packaged_jsonl)

# ISO 639-1 -> (English name, mBART-50 code, NLLB/FLORES-200 code)
LANGUAGES = {
    "ar": ("Arabic", "ar_AR", "arb_Arab"), "cs": ("Czech", "cs_CZ", "ces_Latn"),
    "de": ("German", "de_DE", "deu_Latn"), "en": ("English", "en_XX", "eng_Latn"),
    "es": ("Spanish", "es_XX", "spa_Latn"), "fi": ("Finnish", "fi_FI", "fin_Latn"),
    "fr": ("French", "fr_XX", "fra_Latn"), "he": ("Hebrew", "he_IL", "heb_Hebr"),
    "hi": ("Hindi", "hi_IN", "hin_Deva"), "id": ("Indonesian", "id_ID", "ind_Latn"),
    "it": ("Italian", "it_IT", "ita_Latn"), "ja": ("Japanese", "ja_XX", "jpn_Jpan"),
    "ko": ("Korean", "ko_KR", "kor_Hang"), "nl": ("Dutch", "nl_XX", "nld_Latn"),
    "pl": ("Polish", "pl_PL", "pol_Latn"), "pt": ("Portuguese", "pt_XX", "por_Latn"),
    "ro": ("Romanian", "ro_RO", "ron_Latn"), "ru": ("Russian", "ru_RU", "rus_Cyrl"),
    "sv": ("Swedish", "sv_SE", "swe_Latn"), "th": ("Thai", "th_TH", "tha_Thai"),
    "tr": ("Turkish", "tr_TR", "tur_Latn"), "uk": ("Ukrainian", "uk_UA", "ukr_Cyrl"),
    "vi": ("Vietnamese", "vi_VN", "vie_Latn"), "zh": ("Chinese", "zh_CN", "zho_Hans"),
}
PROMPT = ("Translate the following {source} text into {target}. Reply with the {target} "
          "translation only.\n\n{text}")


@dataclass
class TranslationInput:
    text: str


@dataclass
class TranslationOutput:
    translation: str


def _known_language(code: str) -> str | None:
    return None if code in LANGUAGES else f"must be one of the language codes {', '.join(sorted(LANGUAGES))}"


@dataclass(frozen=True)
class TranslationOptions(generation_options(max_new_tokens=256)):
    source_lang: str = option("en", "Source language (ISO 639-1 code).", check=_known_language)
    target_lang: str | None = option(None, "Target language (ISO 639-1 code); required, here or from a task file "
                                           "or an adapter.", check=_known_language)


class Translation(TextToTextTask):
    name = "translation"
    description = "Translate text from one language to another."
    default_model = "qwen-coder"
    Input = TranslationInput
    Output = TranslationOutput
    Options = TranslationOptions
    target_fields = ("translation",)
    metrics = ("bleu", "chrf", "ter")
    fit_field = "text"  # a text longer than the window is cut, with a warning (never silently)
    prompt_overhead_tokens = 64  # the instructions name both languages; a chat template's system turn
    # the summarization recipe's learning rate (measured there); no shared data measures this task
    recipe = TrainingRecipe(lr=1e-3, epochs=3, min_steps=30, select_by="chrf", patience=2)
    notes = ("The default qwen-coder is best-effort: gist-level French and Chinese, poor German; "
             "pass --model with a translation model (Marian, NLLB, mBART, T5) for quality.")

    def prompt(self, item, options, model):
        source, target = _languages(options)
        if model.head == Head.CAUSAL_LM:
            return PROMPT.format(source=LANGUAGES[source][0], target=LANGUAGES[target][0], text=item.text)
        [text], _ = seq2seq_inputs(model, [item.text], source, target, GenerationParams())
        return text

    def generation_params(self, model, options):
        params = options.generation_params()
        if model.head == Head.SEQ2SEQ_LM:  # language tokens, where the model family has them
            seq2seq_inputs(model, [], *_languages(options), params)
        return params

    def render(self, output: TranslationOutput) -> str:
        return output.translation


def _languages(options) -> tuple[str, str]:
    if not options.target_lang:
        raise OptionError("target_lang", "is required: the language to translate into, for example fr "
                                         "(on the command line: --target-lang fr)")
    return options.source_lang, options.target_lang


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
def register_datasets(register):
    register(DatasetSpec("translation-en-fr-sample", "translation", "10 English sentences with French references, written for nlpapp (use --target-lang fr).",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))


@hookimpl
def register_task_folders(register):
    from pathlib import Path

    register(TaskFolder("translation examples", str(Path(__file__).parent / "tasks")))
