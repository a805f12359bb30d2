"""Text generation: prompt -> text, streamed to the terminal for a single prompt."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import Head, TaskKind, TaskOption, hookimpl
from nlpapp.task import generation_options, generation_params
from nlpapp.training import features


@dataclass
class GenerationInput:
    prompt: str


@dataclass
class GenerationOutput:
    text: str


class Generation(TaskKind):
    name = "generation"
    description = "Continue or answer a prompt with a language model."
    heads = (Head.CAUSAL_LM, Head.SEQ2SEQ_LM)
    default_model = "smollm2"
    Input = GenerationInput
    Output = GenerationOutput
    # 1.2 stops the small default model looping on one phrase (seen with smollm2)
    options = generation_options(128, repetition_penalty=1.2) + (
        TaskOption("raw", bool, False, "Send the prompt as is, without the model's chat template."),
    )
    streams = True
    notes = ("The default smollm2 (135M parameters) writes fluent but shallow text and repeats "
             "itself on long outputs; pass --model with a larger model for quality.")

    def predict(self, model, inputs, options, stream=None):
        texts = model.generate([item.prompt for item in inputs], generation_params(options),
                               chat=not options.get("raw"), stream=stream)
        return [GenerationOutput(text.strip()) for text in texts]

    target_fields = ("response",)
    metrics = ("rouge",)

    def training_features(self, item, targets, ctx):
        tokenizer = ctx.model.tokenizer
        if ctx.head == Head.SEQ2SEQ_LM:
            return [features.seq2seq(tokenizer, item.prompt, targets["response"], ctx.max_length)]
        return [features.causal_lm(tokenizer, item.prompt, targets["response"], ctx.max_length,
                                   chat=not ctx.options.get("raw"))]

    def render(self, output: GenerationOutput) -> str:
        return output.text


@hookimpl
def register_task_kinds(register):
    register(Generation())
