"""One row decoded token by token with llama.cpp: a sampler chain set up as the PyTorch
path samples, the loop, and the text it streams.

The chain follows transformers' order (``generate`` with nlpapp's settings):
repetition penalty, then greedy when the temperature is 0, else temperature, top-k 50
(transformers' default, which the PyTorch path samples with), top-p and a seeded draw. The
penalty is llama.cpp's ``repeat_penalty`` (a logit above 0 divided by it, below 0 multiplied,
as transformers does), fed the prompt's tokens first so that, as in transformers, text
already in the prompt is penalised too. Sampled text does not equal the PyTorch path's: the
random generators differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from nlpapp import GenerationParams, UnsupportedModelError, stop_requested
from nlpapp.model import StreamCallback

TOP_K_WHEN_SAMPLING = 50  # transformers' default top_k; the PyTorch path does not change it


@dataclass
class Decoded:
    """What one row generated: its tokens (no end-of-generation token), its text, and the
    mean natural-log probability of its tokens (only when asked for; ``None`` otherwise)."""

    tokens: list[int]
    text: str
    mean_logprob: float | None = None


def check_supported(params: GenerationParams, model_name: str) -> None:
    """Raise ``UnsupportedModelError`` for settings llama.cpp has no equivalent for, rather
    than ignoring them. ``compile`` (a torch speed-up) is ignored: llama.cpp is compiled."""
    if params.no_repeat_ngram_size:
        raise UnsupportedModelError(f"model {model_name!r} runs on the llamacpp backend, which has no "
                                    "no-repeat-n-gram sampler; drop --no-repeat-ngram-size or use --backend torch")
    unsupported = sorted({*params.extra, *params.tokenizer_settings})
    if unsupported:
        raise UnsupportedModelError(f"model {model_name!r} runs on the llamacpp backend, which cannot apply the "
                                    f"transformers settings {', '.join(unsupported)}; use --backend torch")


def decode(llama: Any, prompt: Sequence[int], params: GenerationParams, *,
           stream: StreamCallback | None = None, scored: bool = False) -> Decoded:
    """Generate from ``prompt`` (token ids, which must fit the context with
    ``params.max_new_tokens``) until an end-of-generation token or ``max_new_tokens``.
    ``stream`` receives each piece of text as it becomes whole characters; the pieces join
    to ``Decoded.text``. The context is evaluated from scratch every call, so a row's output
    never depends on what ran before it. ``llama``: a ``llama_cpp.Llama``, used by one
    thread at a time."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    chain = sampler_chain(params, llama.n_vocab(), penalty_window=llama.last_n_tokens_size, prompt=prompt)
    text = StreamedText(stream)
    tokens: list[int] = []
    logprobs: list[float] = []
    try:
        llama.reset()
        llama.eval(list(prompt))
        while len(tokens) < params.max_new_tokens:
            if scored:
                logits = last_logits(llama)
            token = llama_cpp.llama_sampler_sample(chain, llama.ctx, -1)  # also shows it to the penalty
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            tokens.append(token)
            if scored:
                logprobs.append(log_softmax_at(logits, token))
            text.add(llama.detokenize([token]))  # control tokens come out empty, as with skip_special_tokens
            if stop_requested():  # a server's clients for this batch all went away
                break
            if len(tokens) < params.max_new_tokens:
                llama.eval([token])
    finally:
        llama_cpp.llama_sampler_free(chain)
    mean = sum(logprobs) / max(len(logprobs), 1) if scored else None  # none generated: 0, as transformers'
    return Decoded(tokens, text.text(), mean)


def sampler_chain(params: GenerationParams, n_vocab: int, *, penalty_window: int, prompt: Sequence[int]) -> Any:
    """A llama.cpp sampler chain for ``params`` (the module docstring says which), having
    seen ``prompt``. The caller frees it (``llama_sampler_free``)."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

    def add(sampler: Any) -> None:
        llama_cpp.llama_sampler_chain_add(chain, sampler)  # the chain owns it from here

    if params.repetition_penalty != 1.0:
        add(llama_cpp.llama_sampler_init_penalties(n_vocab, penalty_window, params.repetition_penalty, 0.0, 0.0))
    if params.temperature == 0:
        add(llama_cpp.llama_sampler_init_greedy())
    else:
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_top_k(TOP_K_WHEN_SAMPLING))
        add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        add(llama_cpp.llama_sampler_init_dist(llama_cpp.LLAMA_DEFAULT_SEED if params.seed is None
                                              else params.seed % 2**32))  # a 32-bit seed
    for token in prompt:
        llama_cpp.llama_sampler_accept(chain, token)
    return chain


def last_logits(llama: Any) -> Any:
    """The logits llama.cpp computed at the last evaluated position, as a numpy array
    (a view of llama.cpp's buffer: read it before the next ``eval``)."""
    import llama_cpp
    import numpy as np

    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),))


def log_softmax_at(logits: Any, token: int) -> float:
    """``log softmax(logits)[token]``, in float64 (the model's own probability, before any
    penalty or temperature)."""
    import numpy as np

    values = logits.astype(np.float64)
    top = values.max()
    return float(values[token] - top - math.log(np.exp(values - top).sum()))


class StreamedText:
    """UTF-8 bytes of the pieces generated so far, as text. A token may end inside a
    character; such a half character is held back until whole (and dropped if the row ends
    there), so ``add`` sends ``callback`` only text that will not change."""

    def __init__(self, callback: StreamCallback | None):
        self.callback = callback
        self.data = bytearray()
        self.sent = 0

    def add(self, piece: bytes) -> None:
        self.data += piece
        if self.callback is None:
            return
        text = self.text()
        if len(text) > self.sent:
            self.callback(text[self.sent:])
            self.sent = len(text)

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace").rstrip("\ufffd")
