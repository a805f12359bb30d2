"""Question answering: question + context -> answer and score.

Extractive with a QA-head model (best span, character offsets); generative with a causal
or seq2seq model, which answers in its own words (offsets given when the answer is found
verbatim in the context)."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import DatasetSpec, GenerationParams, InputError, MetricSpec, Head, TaskKind, TaskOption, hookimpl, warn
from nlpapp.datasets import packaged_jsonl
from nlpapp.training import features

PROMPT = ("Answer the question using only the context. Reply with the answer alone, in as few "
          "words as possible.\n\nContext: {context}\n\nQuestion: {question}")
PROMPT_OVERHEAD_TOKENS = 64  # instructions and chat template around the context


@dataclass
class QAInput:
    question: str
    context: str


@dataclass
class QAOutput:
    answer: str
    score: float  # span probability (extractive) or mean token probability (generative)
    start: int | None = None  # character offsets of the answer in the context
    end: int | None = None


class QuestionAnswering(TaskKind):
    name = "qa"
    description = "Answer a question from a given context."
    heads = (Head.EXTRACTIVE_QA, Head.CAUSAL_LM, Head.SEQ2SEQ_LM)
    default_model = "qwen-coder"
    Input = QAInput
    Output = QAOutput
    options = (
        TaskOption("max_answer_tokens", int, 30, "Longest answer, in tokens."),
        TaskOption("stride", int, 128, "Token overlap between windows over a long context (extractive)."),
    )
    notes = ("No extractive QA weights ship offline, so the default answers generatively with "
             "qwen-coder; pass --model with a SQuAD-trained model for extractive spans.")

    def predict(self, model, inputs, options, stream=None):
        max_tokens = options.get("max_answer_tokens", 30)
        if model.head == Head.EXTRACTIVE_QA:
            spans = model.extract_answers([i.question for i in inputs], [i.context for i in inputs],
                                          max_answer_tokens=max_tokens, stride=options.get("stride", 128))
            return [QAOutput(s.text, s.score, s.start, s.end) for s in spans]
        prompts = [PROMPT.format(context=self._fit(model, i.context, max_tokens), question=i.question)
                   for i in inputs]
        answers = model.generate_scored(prompts, GenerationParams(max_new_tokens=max_tokens))
        return [_locate(text.strip(), score, item.context) for (text, score), item in zip(answers, inputs)]

    def _fit(self, model, context: str, answer_tokens: int) -> str:
        if not model.max_input_tokens:
            return context
        budget = model.max_input_tokens - answer_tokens - PROMPT_OVERHEAD_TOKENS
        length = model.count_tokens([context])[0]
        if length <= budget:
            return context
        warn(f"context of {length} tokens truncated to {budget} ({length - budget} dropped) "
             f"to fit {model.name}'s window")
        return model.truncate(context, budget)

    target_fields = ("answer",)
    metrics = ("squad",)

    def training_features(self, item, targets, ctx):
        answer, tokenizer = targets["answer"], ctx.model.tokenizer
        if ctx.head == Head.EXTRACTIVE_QA:
            start = item.context.find(answer)
            if start < 0:
                raise InputError(f"answer {answer!r} is not in its context; extractive QA needs a span "
                                 "of the context")
            return features.extractive_qa(tokenizer, item.question, item.context, start, answer,
                                          ctx.max_length, ctx.options.get("stride", 128))
        prompt = PROMPT.format(context=item.context, question=item.question)
        if ctx.head == Head.SEQ2SEQ_LM:
            return [features.seq2seq(tokenizer, prompt, answer, ctx.max_length)]
        return [features.causal_lm(tokenizer, prompt, answer, ctx.max_length)]

    def render(self, output: QAOutput) -> str:
        return f"{output.answer}\t(score {output.score:.3f})"


def _locate(answer: str, score: float, context: str) -> QAOutput:
    answer = answer.rstrip(".").strip()
    start = context.find(answer) if answer else -1
    if start < 0:
        lowered = context.lower().find(answer.lower()) if answer else -1
        start = lowered
    if start < 0:
        return QAOutput(answer, score)
    return QAOutput(context[start:start + len(answer)], score, start, start + len(answer))


@hookimpl
def register_task_kinds(register):
    register(QuestionAnswering())


@hookimpl
def register_metrics(register):
    from nlpapp.evaluation import metrics

    register(MetricSpec("squad", "SQuAD v1.1 exact match and F1 (max over gold answers)", metrics.squad))


@hookimpl
def register_datasets(register):
    register(DatasetSpec("qa-sample", "qa", "10 short question/context/answer triples written for nlpapp.",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))
