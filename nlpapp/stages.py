"""Task base classes for the common shapes, each split into stages as transformers
pipelines split inference: ``preprocess`` (inputs -> what the model reads, fitted to its
window) -> ``forward`` (one batched model call; the model owns ``inference_mode``) ->
``postprocess`` (model output -> typed outputs). The core owns fitting to the window,
training features per head and label ids; a task writes only what is its own:

- ``TextToTextTask``: ``prompt`` (and optionally ``parse``, ``generation_params``);
- ``ClassificationTask``: a label per text, from a classifier head;
- ``TokenTaggingTask``: a label per word, and the entity spans they make;
- ``SpanExtractionTask``: an answer span in a context (extractive QA).

Overriding ``predict`` stays possible for tasks that fit none of these.

A huge input costs what a window costs: each stage cuts it by characters (``CHARS_PER_TOKEN``
per token the window holds) before anything tokenizes it, with one warning giving its length;
extractive QA searches the first ``MAX_CONTEXT_TOKENS`` of a context; a prompt still far over
the window (a text generation prompt, a question) is refused with ``InputError``."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .errors import InputError
from .head import IGNORE, Head
from .log import warn
from .model import CHARS_PER_TOKEN, Model, StreamCallback  # noqa: F401 - CHARS_PER_TOKEN: part of this module's story
from .options import GenerationOptions, TaskOptions
from .task import TaskKind, TrainingContext
from .types import GenerationParams

WORD = re.compile(r"\S+")
MAX_ANSWER_TOKENS = 30  # SQuAD answers are short; the usual limit in extractive QA
STRIDE = 128  # token overlap between windows over a long context (the SQuAD recipe's)
# Extractive QA reads a context in strided windows, one forward pass each; a context is cut to
# this many tokens first (about 17 windows of 384 at stride 128), so a 1 MB context costs 17
# passes, not a thousand, and the answer is searched for in its first few pages.
MAX_CONTEXT_TOKENS = 4096


def window_chars(model: Model) -> int | None:
    """The characters that can matter for ``model``'s window; ``None`` when it is unknown."""
    return model.max_input_tokens * CHARS_PER_TOKEN if model.max_input_tokens else None


def read_part(model: Model, text: str, what: str) -> str:
    """``text`` cut to the characters ``model``'s window can read, with a warning that gives
    its length when it is cut (the backend cuts the rest to the window, silently as ever)."""
    limit = window_chars(model)
    if limit is None or len(text) <= limit:
        return text
    warn(f"{what} of {len(text):,} characters is more than {model.name}'s window of {model.max_input_tokens} "
         f"tokens can hold; only its start is read (at most {limit:,} characters, cut to the window's tokens)")
    return text[:limit]


@dataclass
class Prepared:
    """One input after ``preprocess``: the text the model reads, and what fitting it cost."""

    item: Any
    prompt: str
    dropped_tokens: int = 0  # tokens of the input cut to fit the model's window (estimated for a huge one)


class TextToTextTask(TaskKind):
    """A text in, a text out, with a causal or seq2seq language model.

    A subclass sets ``name``, ``description``, ``Input``, ``Output`` (its first field gets
    the generated text) and ``target_fields``, and writes ``prompt``. ``fit_field`` names the
    input field cut to the model's window (``None``: nothing is cut); the instructions around
    it are budgeted at ``prompt_overhead_tokens``."""

    heads: ClassVar[tuple[str, ...]] = (Head.SEQ2SEQ_LM, Head.CAUSAL_LM)
    Options: ClassVar[type[TaskOptions]] = GenerationOptions
    default_model: ClassVar[str] = "smollm2"
    fit_field: ClassVar[str | None] = None
    prompt_overhead_tokens: ClassVar[int] = 48  # instructions and chat template around the text
    scored: ClassVar[bool] = False  # forward returns (text, mean token probability) pairs

    # --- what a task writes ------------------------------------------------------------

    def prompt(self, item: Any, options: Any, model: Model) -> str:
        """The text the model reads for ``item`` (a seq2seq model may want another form
        than a causal one: ``model.head`` says which)."""
        raise NotImplementedError

    def parse(self, text: str, prepared: Prepared, score: float | None = None) -> Any:
        """The typed output for one generated ``text`` (stripped into the first field)."""
        return self.Output(text.strip())

    def generation_params(self, model: Model, options: Any) -> GenerationParams:
        """Decoding settings; a task adds model-specific ones (language tokens) here."""
        return options.generation_params()

    def chat(self, options: Any) -> bool:
        """Whether a causal model gets the prompt as a chat turn (its chat template)."""
        return True

    def target(self, targets: dict[str, str]) -> str:
        """The text a training example teaches the model to produce."""
        return targets[self.target_fields[0]]

    def reserved_tokens(self, model: Model, options: Any) -> int:
        """Tokens of the window kept free of the fitted field: the instructions around it
        and, for a causal model, the generated text (prompt and output share its window)."""
        generated = getattr(options, "max_new_tokens", 0) if model.head == Head.CAUSAL_LM else 0
        return self.prompt_overhead_tokens + generated

    # --- the stages the core runs ------------------------------------------------------

    def predict(self, model: Model, inputs: Sequence[Any], options: Any,
                stream: StreamCallback | None = None) -> list[Any]:
        prepared = self.preprocess(model, inputs, options)
        return self.postprocess(prepared, self.forward(model, prepared, options, stream))

    def preprocess(self, model: Model, inputs: Sequence[Any], options: Any) -> list[Prepared]:
        """Each input fitted to the window and made a prompt. Raises ``InputError`` for a
        prompt far longer than the window holds once fitted (a field nothing cuts: a text
        generation prompt, a question), before it is tokenized."""
        reserve = self.reserved_tokens(model, options)
        limit = window_chars(model)
        prepared = []
        for item in inputs:
            item, dropped = self._fitted(model, item, reserve)
            prompt = self.prompt(item, options, model)
            if limit is not None and len(prompt) > limit:
                raise InputError(f"input of {len(prompt):,} characters is far longer than {model.name}'s window of "
                                 f"{model.max_input_tokens} tokens holds; shorten it")
            prepared.append(Prepared(item, prompt, dropped))
        return prepared

    def forward(self, model: Model, prepared: list[Prepared], options: Any,
                stream: StreamCallback | None = None) -> list[Any]:
        prompts = [p.prompt for p in prepared]
        params = self.generation_params(model, options)
        if self.scored:
            return model.generate_scored(prompts, params, chat=self.chat(options))
        return model.generate(prompts, params, chat=self.chat(options), stream=stream)

    def postprocess(self, prepared: list[Prepared], generated: list[Any]) -> list[Any]:
        if self.scored:
            return [self.parse(text, p, score) for p, (text, score) in zip(prepared, generated)]
        return [self.parse(text, p) for p, text in zip(prepared, generated)]

    def training_features(self, item: Any, targets: dict[str, str], ctx: TrainingContext) -> list[dict[str, Any]]:
        """The same prompt as at inference, so an adapter learns what it will be asked; the
        input is cut so prompt and target fit ``max_length``."""
        from .training import features

        model, target = ctx.model, self.target(targets)
        reserve = self.prompt_overhead_tokens + (
            model.count_tokens([target])[0] + 1 if ctx.head == Head.CAUSAL_LM else 0)
        item, _ = self._fitted(model, item, reserve, window=ctx.max_length, quiet=True)
        prompt = self.prompt(item, ctx.options, model)
        if ctx.head == Head.SEQ2SEQ_LM:
            params = self.generation_params(model, ctx.options)
            from .runtime.hf import tokenizer_settings

            with tokenizer_settings(model.tokenizer, params.tokenizer_settings):
                return [features.seq2seq(model.tokenizer, prompt, target, ctx.max_length)]
        return [features.causal_lm(model.tokenizer, prompt, target, ctx.max_length, chat=self.chat(ctx.options))]

    def _fitted(self, model: Model, item: Any, reserve: int, window: int | None = None,
                quiet: bool = False) -> tuple[Any, int]:
        """``item`` with its ``fit_field`` cut to what the window leaves after ``reserve``
        tokens; the tokens dropped (a warning says so, at inference). A text longer than
        the budget's ``CHARS_PER_TOKEN`` characters is cut by characters first, never
        tokenized whole; its dropped tokens are then estimated from the part read."""
        window = window or model.max_input_tokens
        if self.fit_field is None or not window:
            return item, 0
        text = getattr(item, self.fit_field)
        budget = max(window - reserve, 16)
        read = text[:budget * CHARS_PER_TOKEN]
        length = model.count_tokens([read])[0]
        if length <= budget and len(read) == len(text):
            return item, 0
        if len(read) == len(text):
            dropped, cut = length - budget, f"{length} tokens truncated to {budget} ({length - budget} dropped)"
        else:  # the rest was never tokenized: as many tokens a character as the part read
            dropped = max(round(length * len(text) / len(read)) - budget, 1)
            cut = f"{len(text):,} characters truncated to {budget} tokens (about {dropped:,} dropped)"
        if not quiet:
            warn(f"{self.fit_field} of {cut} to fit {model.name}'s window of {window}")
        return dataclasses.replace(item, **{self.fit_field: model.truncate(read, budget)}), dropped


class ClassificationTask(TaskKind):
    """A label per text, from a sequence-classification head (an encoder gets a new one when
    trained). ``Output`` takes ``(label, score, scores)``; the first target field is the label."""

    heads: ClassVar[tuple[str, ...]] = (Head.SEQUENCE_CLASSIFICATION,)
    target_fields: ClassVar[tuple[str, ...]] = ("label",)
    metrics: ClassVar[tuple[str, ...]] = ("classification",)

    def text(self, item: Any) -> str:
        """The text the classifier reads (the first input field)."""
        return getattr(item, self.input_fields[0])

    def label_scores(self, model: Model, texts: list[str], options: Any) -> list[dict[str, float]]:
        """``{label: probability}`` per text; the default asks the model's head."""
        return model.classify(texts)

    def label_descriptions(self, options: Any) -> dict[str, list[str]] | None:
        """Texts that describe each label under ``options`` (``{label: [sentence, ...]}``),
        or ``None`` (the default) when the task has none. Training starts a new classifier
        head from them where they cover every training label (``nlpapp.training.head_init``:
        each label's row is imprinted from its descriptions); otherwise from the class means
        of the training examples."""
        return None

    def predict(self, model: Model, inputs: Sequence[Any], options: Any,
                stream: StreamCallback | None = None) -> list[Any]:
        texts = [read_part(model, self.text(item), self.input_fields[0]) for item in inputs]
        scored = self.label_scores(model, texts, options)
        return [self.Output(max(s, key=s.get), max(s.values()), s) for s in scored]

    def training_head(self, base: str) -> str:
        return Head.SEQUENCE_CLASSIFICATION

    def training_features(self, item: Any, targets: dict[str, str], ctx: TrainingContext) -> list[dict[str, Any]]:
        from .training import features

        text = self.text(item)[:ctx.max_length * CHARS_PER_TOKEN]  # a huge text is not tokenized whole
        return [features.classification(ctx.model.tokenizer, text, ctx.label_ids[targets[self.target_fields[0]]],
                                        ctx.max_length)]


@dataclass
class Entity:
    text: str
    label: str  # the entity type: PER, ORG, LOC, MISC, ...
    start: int  # character offsets in the input text: text[start:end] == self.text
    end: int
    score: float  # mean probability of the entity's word tags


class TokenTaggingTask(TaskKind):
    """A BIO tag for each whitespace-separated word of a text, and the entity spans the
    tags make. The model's head provides ``tag_words(words) -> [{label: probability}]`` per
    word; training labels the first sub-word token of each word (Devlin et al. 2019).
    ``Output`` takes ``(entities, tags)``; the first target field holds the tags, space-separated."""

    heads: ClassVar[tuple[str, ...]] = (Head.TOKEN_CLASSIFICATION,)
    target_fields: ClassVar[tuple[str, ...]] = ("tags",)

    def make_input(self, record: dict[str, Any], where: str = "input") -> Any:
        """Also takes CoNLL-style records whose words are a list (``tokens``, or the text field)."""
        record, main = dict(record), self.input_fields[0]
        words = record.get(main, record.get("tokens"))
        if isinstance(words, list):
            record[main] = " ".join(str(w) for w in words)
        return super().make_input(record, where)

    def make_example(self, record: dict[str, Any], where: str = "input") -> tuple[Any, dict[str, str]]:
        """A training example; its tags, one per word, as a list or space-separated."""
        field = self.target_fields[0]
        record = dict(record)
        if isinstance(record.get(field), list):
            record[field] = " ".join(str(t) for t in record[field])
        item, targets = super().make_example(record, where)
        words, tags = getattr(item, self.input_fields[0]).split(), targets[field].split()
        if len(words) != len(tags):
            raise InputError(f"{where}: {len(tags)} tags for {len(words)} words; give one tag per "
                             f"whitespace-separated word of {self.input_fields[0]!r}")
        return item, targets

    def references(self, record: dict[str, Any], where: str = "input") -> list[str]:
        """One reference: the tag sequence (a list of tags is one sequence, not alternatives)."""
        _, targets = self.make_example(record, where)
        return [targets[self.target_fields[0]]]

    def label_names(self, targets: dict[str, str]) -> list[str]:
        return targets[self.target_fields[0]].split()

    def training_head(self, base: str) -> str:
        return Head.TOKEN_CLASSIFICATION  # an encoder gets a new token-classification head

    def training_features(self, item: Any, targets: dict[str, str], ctx: TrainingContext) -> list[dict[str, Any]]:
        words, tags = getattr(item, self.input_fields[0]).split(), targets[self.target_fields[0]].split()
        words = words[:ctx.max_length]  # a word is a token at least: none past these fits
        encoded = ctx.model.tokenizer(words, is_split_into_words=True, truncation=True, max_length=ctx.max_length)
        labels, previous = [], None
        for word in encoded.word_ids():
            # the first piece of each word carries its tag; specials and later pieces are ignored
            labels.append(IGNORE if word is None or word == previous else ctx.label_ids[tags[word]])
            previous = word
        feature = {"input_ids": encoded["input_ids"], "labels": labels}
        if "token_type_ids" in encoded:
            feature["token_type_ids"] = encoded["token_type_ids"]
        return [feature]

    def predict(self, model: Model, inputs: Sequence[Any], options: Any,
                stream: StreamCallback | None = None) -> list[Any]:
        texts = [getattr(item, self.input_fields[0]) for item in inputs]
        spans, unread = [], []
        for text in texts:
            read = read_part(model, text, self.input_fields[0])
            words = [(m.group(), m.start(), m.end()) for m in WORD.finditer(read)]
            if len(read) < len(text):
                if words and words[-1][2] == len(read):
                    words.pop()  # perhaps cut in two: counted with the words not read
                # words past the part read are counted, not tokenized: outside, as past the window
                unread.append(sum(1 for _ in WORD.finditer(text, words[-1][2] if words else 0)))
            else:
                unread.append(0)
            spans.append(words)
        tagged = model.tag_words([[w for w, _, _ in words] for words in spans])
        outputs = []
        for text, words, probs, rest in zip(texts, spans, tagged, unread):
            tags = [max(p, key=p.get) if p else "O" for p in probs]  # a word past the window: outside
            scores = [p.get(t, 0.0) for p, t in zip(probs, tags)]
            outputs.append(self.Output(entities(text, words, tags, scores), tags + ["O"] * rest))
        return outputs

    def prediction_text(self, output: Any) -> str:
        return " ".join(output.tags)

    def render(self, output: Any) -> str:
        if not output.entities:
            return "(no entities)"
        return "\n".join(f"{e.label}\t{e.text}\t[{e.start}, {e.end})\t(score {e.score:.3f})" for e in output.entities)


def entities(text: str, words: Sequence[tuple[str, int, int]], tags: Sequence[str],
             scores: Sequence[float]) -> list[Entity]:
    """The entity spans of BIO ``tags`` over ``words`` (word, start, end). An ``I-X`` that
    does not continue an ``X`` starts a new entity, as seqeval's default mode reads it."""
    found: list[Entity] = []
    current: tuple[str, list[int]] | None = None  # label, word indices

    def close() -> None:
        if current is not None:
            label, members = current
            start, end = words[members[0]][1], words[members[-1]][2]
            found.append(Entity(text[start:end], label, start, end, sum(scores[i] for i in members) / len(members)))

    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current[0] == label:
            current[1].append(i)
            continue
        close()
        current = (label, [i]) if prefix in ("B", "I") and label else None
    close()
    return found


def bounded_context(model: Model, context: str) -> str:
    """``context`` cut to its first ``MAX_CONTEXT_TOKENS`` tokens (cut by characters before
    it is tokenized), with a warning giving its length; always a prefix, so answer offsets
    stay offsets into the whole context."""
    if len(context) <= MAX_CONTEXT_TOKENS:  # fewer characters than tokens allowed: nothing to count
        return context
    read = context[:MAX_CONTEXT_TOKENS * CHARS_PER_TOKEN]
    if len(read) == len(context) and model.count_tokens([read])[0] <= MAX_CONTEXT_TOKENS:
        return context
    cut = model.truncate(read, MAX_CONTEXT_TOKENS)
    cut = cut if context.startswith(cut) else context[:len(cut)]  # a backend that rejoins words
    warn(f"context of {len(context):,} characters cut to its first {MAX_CONTEXT_TOKENS} tokens "
         f"({len(cut):,} characters): extractive QA searches at most that much of a context")
    return cut


class SpanExtractionTask(TaskKind):
    """An answer span in a context, from an extractive-QA head (start and end positions).
    ``Input`` has ``question`` and ``context``; ``Output`` takes ``(answer, score, start, end)``;
    the first target field is the answer text, found in the context for training. Options
    ``max_answer_tokens`` and ``stride``, where the task has them, tune the search."""

    heads: ClassVar[tuple[str, ...]] = (Head.EXTRACTIVE_QA,)
    target_fields: ClassVar[tuple[str, ...]] = ("answer",)

    def extract(self, model: Model, inputs: Sequence[Any], options: Any) -> list[Any]:
        """The best span of each context, searched in its first ``MAX_CONTEXT_TOKENS``
        tokens. Raises ``InputError`` for a question far longer than the window holds."""
        limit = window_chars(model)
        for item in inputs:
            if limit is not None and len(item.question) > limit:
                raise InputError(f"question of {len(item.question):,} characters is far longer than {model.name}'s "
                                 f"window of {model.max_input_tokens} tokens holds; shorten it")
        contexts = [bounded_context(model, item.context) for item in inputs]
        spans = model.extract_answers([i.question for i in inputs], contexts,
                                      max_answer_tokens=getattr(options, "max_answer_tokens", MAX_ANSWER_TOKENS),
                                      stride=getattr(options, "stride", STRIDE))
        return [self.Output(s.text, s.score, s.start, s.end) for s in spans]

    def predict(self, model: Model, inputs: Sequence[Any], options: Any,
                stream: StreamCallback | None = None) -> list[Any]:
        return self.extract(model, inputs, options)

    def training_head(self, base: str) -> str:
        return Head.EXTRACTIVE_QA  # an encoder gets a new span head (start and end logits)

    def training_features(self, item: Any, targets: dict[str, str], ctx: TrainingContext) -> list[dict[str, Any]]:
        from .training import features

        answer = targets[self.target_fields[0]]
        start = item.context.find(answer)
        if start < 0:
            raise InputError(f"answer {answer!r} is not in its context; extractive QA needs a span of the context")
        return features.extractive_qa(ctx.model.tokenizer, item.question, item.context, start, answer, ctx.max_length,
                                      getattr(ctx.options, "stride", STRIDE))
