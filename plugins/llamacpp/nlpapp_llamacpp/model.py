"""``LlamaCppModel``: a causal language model in a GGUF file, run by llama.cpp, behind
nlpapp's ``Model`` interface (the PyTorch backend's counterpart is ``nlpapp.runtime.hf.CausalLM``).

It prompts the model as the PyTorch path does (the GGUF's own chat template, with
``add_generation_prompt``; a plain prompt gets the special tokens the vocabulary adds), so
greedy decoding gives the same tokens wherever the two compute the same logits. What it
cannot do: train (``trainable_module``), LoRA adapters, classify, embed, extract spans,
and ``no_repeat_ngram_size`` (see README)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Sequence

from nlpapp import GenerationParams, Head, InputError, Model
from nlpapp.model import CHARS_PER_TOKEN, Prompt, StreamCallback, single_user_turn

from .chat import ChatTemplate
from .decoding import Decoded, check_supported, decode


class LlamaCppModel(Model):
    """A ``llama_cpp.Llama`` (``llama``) as an nlpapp model. ``dtype`` is the file's tensor
    type as llama.cpp names it (``Q4_1``, ``F16``...); ``max_input_tokens`` is the context
    llama.cpp allocated, at most what the model was trained on.

    Batches: llama-cpp-python offers no batched generation of independent prompts (its
    ``Llama`` holds one sequence), so the rows of a batch are generated one after another,
    each from a fresh context; one model is used by one thread at a time (a lock)."""

    head = Head.CAUSAL_LM

    def __init__(self, path: str, llama: Any, *, device: str):
        import llama_cpp

        self.name = path
        self.llama = llama
        self.device = device
        self.dtype = file_type(llama)
        self.model_type = llama.metadata.get("general.architecture", "")
        self.max_input_tokens = min(llama.n_ctx(), llama_cpp.llama_model_n_ctx_train(llama.model))
        self.chat_template = ChatTemplate.of(llama)
        self.has_chat_template = self.chat_template is not None
        self._lock = threading.Lock()  # a llama.cpp context runs one sequence, for one caller

    # --- tokens -------------------------------------------------------------------------

    def tokenize(self, text: str, *, specials: bool) -> list[int]:
        """``text``'s token ids; with ``specials``, led by the special tokens the vocabulary
        adds (BOS where the GGUF says ``add_bos_token``). Special-token text inside it
        (``<|im_end|>``) is read as that token, as transformers' tokenizers read it."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=specials, special=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenize(text, specials=False)) for text in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to its first ``max_tokens`` tokens (the text of those tokens; the
        byte-level BPE vocabularies of most GGUF models give back an exact prefix)."""
        text = text[: max(max_tokens, 0) * CHARS_PER_TOKEN]  # a huge text costs what a window costs
        tokens = self.tokenize(text, specials=False)
        if len(tokens) <= max_tokens:
            return text
        kept = self.llama.detokenize(tokens[:max(max_tokens, 0)], special=True)
        return kept.decode("utf-8", errors="replace").rstrip("\ufffd")

    def prompt_text(self, prompt: Prompt, chat: bool) -> tuple[str, bool]:
        """The text fed for ``prompt`` (through the chat template with ``chat``, where there
        is one) and whether the vocabulary's special tokens are added: what
        ``CausalLM.prompt_texts`` gives the PyTorch path."""
        if chat and self.chat_template is not None:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            return self.chat_template.render(messages), False
        return (prompt if isinstance(prompt, str) else single_user_turn(self, prompt)), True

    def prompt_tokens(self, prompt: Prompt, chat: bool) -> list[int]:
        text, specials = self.prompt_text(prompt, chat)
        tokens = self.tokenize(text, specials=specials)
        if not tokens:
            raise InputError("the prompt is empty; give the model some text to continue")
        return tokens

    # --- generation ---------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], params: GenerationParams, *,
                 chat: bool = True, stream: StreamCallback | None = None) -> list[str]:
        """Each prompt continued (as a user turn through the chat template with ``chat``).
        ``stream`` gets the text as it is made when there is one prompt, as on PyTorch."""
        streams = [stream] if stream is not None and len(prompts) == 1 else None
        return [row.text for row in self._decode_rows(prompts, params, chat, streams)]

    def generate_each(self, prompts: Sequence[Prompt], params: GenerationParams, *, chat: bool = True,
                      streams: Sequence[StreamCallback | None] | None = None,
                      adapters: Sequence[str | None] | None = None) -> list[str]:
        """Like ``generate`` for a server's independent requests: a prompt may be a
        conversation (through the chat template), and every row with a callback in
        ``streams`` streams, whatever the batch size. No adapters (``adapters`` must be all
        ``None``)."""
        if adapters is not None:
            self.activate_one_adapter(adapters)
        chat = chat or any(not isinstance(p, str) for p in prompts)
        return [row.text for row in self._decode_rows(prompts, params, chat, streams)]

    def generate_scored(self, prompts: Sequence[str], params: GenerationParams, *,
                        chat: bool = True) -> list[tuple[str, float]]:
        """Each text with the geometric-mean probability of its tokens. The probabilities are
        the model's own, before repetition penalty and temperature (transformers scores
        after them: the two agree for greedy decoding without a penalty)."""
        import math

        rows = self._decode_rows(prompts, params, chat, None, scored=True)
        return [(row.text, math.exp(row.mean_logprob or 0.0)) for row in rows]

    def _decode_rows(self, prompts: Sequence[Prompt], params: GenerationParams, chat: bool,
                     streams: Sequence[StreamCallback | None] | None, *, scored: bool = False) -> list[Decoded]:
        """Every row checked and tokenized before the first is generated, so a bad row
        fails the batch before any work."""
        check_supported(params, self.name)
        rows = [self.prompt_tokens(prompt, chat) for prompt in prompts]
        for tokens in rows:
            self.check_window(len(tokens), params.max_new_tokens)
        callbacks = list(streams) if streams else [None] * len(rows)
        with self._lock:
            return [decode(self.llama, tokens, params, stream=callback, scored=scored)
                    for tokens, callback in zip(rows, callbacks)]

    def check_window(self, length: int, max_new_tokens: int) -> None:
        """``InputError`` when a prompt of ``length`` tokens and the new tokens overflow the context."""
        if self.max_input_tokens and length + max_new_tokens > self.max_input_tokens:
            raise InputError(f"prompt is {length} tokens; with {max_new_tokens} new tokens (max_new_tokens) it "
                             f"exceeds the model's window of {self.max_input_tokens} tokens; shorten it")


def file_type(llama: Any) -> str:
    """The GGUF's tensor type as llama.cpp describes the model (``llama 135M Q4_1`` -> ``Q4_1``)."""
    import llama_cpp

    buffer = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llama.model, buffer, len(buffer))
    parts = buffer.value.decode("utf-8", errors="replace").split(" ", 2)
    return parts[2] if len(parts) == 3 else "gguf"
