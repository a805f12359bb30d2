"""Text generation (transformers' ``text-generation``; ``generation`` is its older name):
prompt -> text, streamed to the terminal for a single prompt."""

from __future__ import annotations

from dataclasses import dataclass

from nlpapp import Head, TextToTextTask, TrainingRecipe, generation_options, hookimpl, option


@dataclass
class GenerationInput:
    prompt: str


@dataclass
class GenerationOutput:
    response: str  # the name of the training target too, so an output row and an example line up

    @property
    def text(self) -> str:
        """The field's name before it was ``response``."""
        return self.response


# repetition_penalty 1.2 stops the small default model looping on one phrase (seen with smollm2)
@dataclass(frozen=True)
class TextGenerationOptions(generation_options(max_new_tokens=128, repetition_penalty=1.2)):
    raw: bool = option(False, "Send the prompt as is, without the model's chat template.")


class TextGeneration(TextToTextTask):
    name = "text-generation"
    aliases = ("generation",)  # the name before transformers' task names were adopted
    description = "Continue or answer a prompt with a language model."
    heads = (Head.CAUSAL_LM, Head.SEQ2SEQ_LM)
    Input = GenerationInput
    Output = GenerationOutput
    Options = TextGenerationOptions
    target_fields = ("response",)
    metrics = ("rouge",)
    streams = True
    # the summarization recipe's learning rate (measured there); no shared data measures this task
    recipe = TrainingRecipe(lr=1e-3, epochs=3, min_steps=30, select_by="rougeL", patience=2)
    notes = ("The default smollm2 (135M parameters) writes fluent but shallow text and repeats "
             "itself on long outputs; pass --model with a larger model for quality.")

    def prompt(self, item, options, model):
        return item.prompt  # the model's own window check says when a prompt is too long

    def chat(self, options):
        return not options.raw

    def render(self, output: GenerationOutput) -> str:
        return output.response


Generation = TextGeneration  # the class's old name, for code that imports it


@hookimpl
def register_task_kinds(register):
    register(TextGeneration())
