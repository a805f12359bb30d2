"""A deterministic fake model: every capability, no weights, instant.

Its answers are simple functions of the input, so tests can predict them exactly:
- generate: the prompt's words reversed (a seq2seq fake upper-cases them), cut to
  ``max_new_tokens`` words; a seed and temperature > 0 shuffle them repeatably;
- classify: "positive" if the text has more words from POSITIVE than NEGATIVE;
- extract_answers: the longest word of the context that is not in the question;
- embed: a normalised bag of hashed character trigrams.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Sequence

from ..model import Model, StreamCallback
from ..head import Head
from ..types import GenerationParams, Span

POSITIVE = {"good", "great", "love", "loved", "excellent", "wonderful", "happy", "best"}
NEGATIVE = {"bad", "awful", "hate", "hated", "terrible", "waste", "worst", "boring"}
EMBED_DIM = 64
WORD = re.compile(r"\w+")


class FakeModel(Model):
    model_type = "fake"
    max_input_tokens = 512

    def __init__(self, name: str, head: str):
        self.name = name
        self.head = head
        self.labels = ("negative", "positive") if head == Head.SEQUENCE_CLASSIFICATION else ()
        self.calls: list[int] = []  # batch sizes seen, so tests can check batching

    def generate(self, prompts: Sequence[str], params: GenerationParams, *,
                 chat: bool = True, stream: StreamCallback | None = None) -> list[str]:
        self.calls.append(len(prompts))
        texts = []
        for prompt in prompts:
            words = prompt.split()[::-1]
            if params.temperature > 0:
                random.Random(params.seed).shuffle(words)
            text = " ".join(words[: params.max_new_tokens])
            texts.append(text.upper() if self.head == Head.SEQ2SEQ_LM else text)
        if stream is not None and len(texts) == 1:
            for n, word in enumerate(texts[0].split()):
                stream(word if n == 0 else " " + word)
        return texts

    def generate_scored(self, prompts: Sequence[str], params: GenerationParams, *,
                        chat: bool = True) -> list[tuple[str, float]]:
        return [(text, 0.5) for text in self.generate(prompts, params, chat=chat)]

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if self.head != Head.SEQUENCE_CLASSIFICATION:
            return super().classify(texts)
        self.calls.append(len(texts))
        out = []
        for text in texts:
            words = [w.lower() for w in WORD.findall(text)]
            balance = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
            p = 1 / (1 + math.exp(-max(-30, min(30, balance))))  # long texts would overflow exp
            out.append({"negative": 1 - p, "positive": p})
        return out

    def extract_answers(self, questions: Sequence[str], contexts: Sequence[str], *,
                        max_answer_tokens: int = 30, stride: int = 128) -> list[Span]:
        if self.head != Head.EXTRACTIVE_QA:
            return super().extract_answers(questions, contexts)
        self.calls.append(len(questions))
        spans = []
        for question, context in zip(questions, contexts):
            asked = {w.lower() for w in WORD.findall(question)}
            candidates = [m for m in WORD.finditer(context) if m.group().lower() not in asked]
            best = max(candidates, key=lambda m: len(m.group()), default=None)
            spans.append(Span(best.group(), 0.9, best.start(), best.end()) if best else Span("", 0.0, 0, 0))
        return spans

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.head != Head.ENCODER:
            return super().embed(texts)
        self.calls.append(len(texts))
        vectors = []
        for text in texts:
            vector = [0.0] * EMBED_DIM
            padded = f"  {text.lower()}  "
            for i in range(len(padded) - 2):
                slot = int(hashlib.md5(padded[i:i + 3].encode()).hexdigest(), 16) % EMBED_DIM
                vector[slot] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors
