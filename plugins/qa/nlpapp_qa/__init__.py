"""Question answering (transformers' ``question-answering``; ``qa`` is its older name):
question + context -> answer and score.

Extractive with a QA-head model (best span, character offsets); generative with a causal
or seq2seq model, which answers in its own words (offsets given when the answer is found
verbatim in the context)."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import (DatasetSpec, TrainingRecipe, GenerationParams, Head, SpanExtractionTask, TaskOptions, TextToTextTask, hookimpl,
                    option, packaged_jsonl)

PROMPT = ("Answer the question using only the context. Reply with the answer alone, in as few "
          "words as possible.\n\nContext: {context}\n\nQuestion: {question}")


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


@dataclass(frozen=True)
class QuestionAnsweringOptions(TaskOptions):
    max_answer_tokens: int = option(30, "Longest answer, in tokens.", check=lambda v: None if v >= 1 else "must be at least 1")
    stride: int = option(128, "Token overlap between windows over a long context (extractive).",
                         check=lambda v: None if v >= 0 else "must be >= 0")


class QuestionAnswering(TextToTextTask):
    """Generative with a causal or seq2seq model (the text-to-text stages); extractive with a
    QA head (the span-extraction stages)."""

    name = "question-answering"
    aliases = ("qa",)  # the name before transformers' task names were adopted
    description = "Answer a question from a given context."
    heads = (Head.EXTRACTIVE_QA, Head.CAUSAL_LM, Head.SEQ2SEQ_LM)
    default_model = "qwen-coder"
    Input = QAInput
    Output = QAOutput
    Options = QuestionAnsweringOptions
    target_fields = ("answer",)
    metrics = ("squad",)
    # LoRA: the summarization recipe's learning rate (measured there); a new extractive head
    # (qa_outputs) takes head_lr. No shared data measures this task.
    recipe = TrainingRecipe(lr=1e-3, head_lr=2e-3, epochs=3, min_steps=30, select_by="f1", patience=2)
    fit_field = "context"  # a long context is cut (the question is kept), with a warning
    prompt_overhead_tokens = 64  # instructions and chat template around the context
    scored = True  # generated answers come with their mean token probability
    notes = ("No extractive QA weights ship offline, so the default answers generatively with "
             "qwen-coder; pass --model with a SQuAD-trained model for extractive spans.")

    def prompt(self, item, options, model):
        return PROMPT.format(context=item.context, question=item.question)

    def generation_params(self, model, options):
        return GenerationParams(max_new_tokens=options.max_answer_tokens)  # greedy

    def reserved_tokens(self, model, options):
        return self.prompt_overhead_tokens + options.max_answer_tokens

    def parse(self, text, prepared, score=None):
        return _locate(text.strip(), score, prepared.item.context)

    def predict(self, model, inputs, options, stream=None):
        if model.head == Head.EXTRACTIVE_QA:
            return SpanExtractionTask.extract(self, model, inputs, options)
        return super().predict(model, inputs, options, stream)

    def training_features(self, item, targets, ctx):
        if ctx.head == Head.EXTRACTIVE_QA:
            return SpanExtractionTask.training_features(self, item, targets, ctx)
        return super().training_features(item, targets, ctx)

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
def register_datasets(register):
    register(DatasetSpec("qa-sample", "question-answering", "10 short question/context/answer triples written for nlpapp.",
                         open=packaged_jsonl(__name__, "data/sample.jsonl")))
