"""Summarization: text -> summary, with seq2seq or causal models. Input longer than the
model's window is truncated, with a warning that says by how much."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import MetricSpec, Head, TaskKind, TaskOption, hookimpl, warn
from nlpapp.task import generation_options, generation_params
from nlpapp.training import features

PROMPT = "Summarize the following text in {length}.\n\n{text}"
PROMPT_OVERHEAD_TOKENS = 48  # instructions and chat template around the text
LENGTHS = {"headline": "one short headline", "sentence": "one sentence", "paragraph": "a short paragraph"}


@dataclass
class SummarizationInput:
    text: str


@dataclass
class SummarizationOutput:
    summary: str
    truncated_tokens: int = 0  # input tokens dropped to fit the model's window


class Summarization(TaskKind):
    name = "summarization"
    description = "Summarize a text."
    heads = (Head.SEQ2SEQ_LM, Head.CAUSAL_LM)
    default_model = "smollm2"
    Input = SummarizationInput
    Output = SummarizationOutput
    options = (TaskOption("length", str, "sentence", "How long a summary (causal models).",
                          choices=tuple(LENGTHS)),) + generation_options(64)
    notes = ("The default smollm2 often copies the first sentence or drifts; pass --model with a "
             "summarization model (BART, T5, Pegasus) for quality.")

    def predict(self, model, inputs, options, stream=None):
        params = generation_params(options)
        texts, dropped = [], []
        for item in inputs:
            text, cut = fit_to_window(model, item.text, params.max_new_tokens)
            texts.append(text)
            dropped.append(cut)
        summaries = model.generate([prompt_for(model, t, options) for t in texts], params)
        return [SummarizationOutput(s.strip(), cut) for s, cut in zip(summaries, dropped)]

    target_fields = ("summary",)
    metrics = ("rouge",)

    def training_features(self, item, targets, ctx):
        """The same prompt as at inference, so a trained adapter sees what it learned on."""
        model, summary = ctx.model, targets["summary"]
        summary_tokens = model.count_tokens([summary])[0] + 1
        budget = ctx.max_length - PROMPT_OVERHEAD_TOKENS - (
            summary_tokens if ctx.head == Head.CAUSAL_LM else 0)
        text = model.truncate(item.text, max(budget, 16))
        if ctx.head == Head.SEQ2SEQ_LM:
            return [features.seq2seq(model.tokenizer, prompt_for(model, text, ctx.options), summary,
                                     ctx.max_length)]
        return [features.causal_lm(model.tokenizer, prompt_for(model, text, ctx.options), summary,
                                   ctx.max_length)]

    def render(self, output: SummarizationOutput) -> str:
        return output.summary


def prompt_for(model, text: str, options: dict) -> str:
    if model.head == Head.SEQ2SEQ_LM:
        return f"summarize: {text}" if model.model_type in ("t5", "mt5") else text
    return PROMPT.format(length=LENGTHS[options.get("length") or "sentence"], text=text)


def fit_to_window(model, text: str, max_new_tokens: int) -> tuple[str, int]:
    """Cut ``text`` to what the model can read; returns the text and the tokens dropped."""
    if not model.max_input_tokens:
        return text, 0
    budget = model.max_input_tokens - PROMPT_OVERHEAD_TOKENS
    if model.head == Head.CAUSAL_LM:
        budget -= max_new_tokens  # prompt and summary share a causal model's window
    length = model.count_tokens([text])[0]
    if length <= budget:
        return text, 0
    warn(f"input of {length} tokens truncated to {budget} ({length - budget} dropped) to fit "
         f"{model.name}'s window of {model.max_input_tokens}")
    return model.truncate(text, budget), length - budget


@hookimpl
def register_task_kinds(register):
    register(Summarization())


@hookimpl
def register_metrics(register):
    from nlpapp.evaluation import metrics

    register(MetricSpec("rouge", "ROUGE-1/2/L/Lsum F1 from rouge-score, with stemming", metrics.rouge))
