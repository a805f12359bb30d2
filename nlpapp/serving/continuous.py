"""Continuous batching for generation, from transformers (its ``ContinuousBatchingManager``):
a request joins the running batch at the next decoding step instead of waiting for the
batch in progress to end, and leaves it when done. ``nlpapp serve --continuous-batching``
starts one per served causal model.

The manager runs its own thread and decodes greedily; it drops the repetition-penalty and
no-repeat-n-gram processors (transformers 5.24 logs that they are not supported), so it
takes only requests it decodes exactly as ``generate`` would: greedy, repetition penalty 1,
no n-gram ban, no adapter. Others go to the model thread's padded batch as without it.
It runs on a copy of the model's weights (twice the weights' memory: sharing one module, the
padded batches run beside it decoded garbage on smollm2), and makes and reads token ids with a copy of the tokenizer (a fast
tokenizer is not safe to use from two threads at once). A model with adapters loaded (a
peft model) gets no manager."""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any, Callable

from ..model import Prompt
from ..types import GenerationParams

PAGE_TOKENS = 256  # transformers' default page size
TOKENS_PER_REQUEST = 2048  # prompt and answer, the cache each request may fill

# Called on the event loop with a row's text so far and whether it is finished.
OnText = Callable[[str, int, bool], None]


class ContinuousBatching:
    def __init__(self, model: Any, max_new_tokens: int, max_requests: int):
        """Start a manager for ``model`` (an nlpapp causal LM from the Hugging Face backend);
        ``max_new_tokens``: the most any request may ask for; ``max_requests``: the most
        decoded at once. Its paged KV cache holds ``max_requests`` requests of
        ``TOKENS_PER_REQUEST`` (or the model's window, if shorter): left to itself, the manager
        sizes the cache from free memory, and spent over 12 s of both cores preparing it for a
        tiny test model here."""
        from transformers import ContinuousBatchingConfig, GenerationConfig

        self.model = model
        self.tokenizer = copy.deepcopy(model.tokenizer)
        # its own copy of the weights: sharing the module, the model thread's sampled batches beside
        # it decoded garbage on smollm2 (the cause inside transformers is not pinned down)
        self.hf_model = copy.deepcopy(model.hf_model)
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                                  eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id)
        per_request = min(TOKENS_PER_REQUEST, model.max_input_tokens or TOKENS_PER_REQUEST)
        sizes = ContinuousBatchingConfig(num_blocks=max_requests * math.ceil(per_request / PAGE_TOKENS),
                                         page_size=PAGE_TOKENS, max_requests_per_batch=max_requests,
                                         max_batch_tokens=per_request)
        self.manager = self.hf_model.init_continuous_batching(generation_config=config,
                                                               continuous_batching_config=sizes)
        self.manager.start()
        # one token first, so the manager has built its batch processor (and its cache) before
        # the server says it is ready
        warmup = self.manager.add_request(self.tokenizer("hi")["input_ids"], max_new_tokens=1)
        if warmup is None or self.manager.get_result(warmup, timeout=600) is None:
            raise RuntimeError("continuous batching did not start")

    @staticmethod
    def takes(params: GenerationParams, adapter_key: str | None) -> bool:
        """Whether a request decodes here exactly as ``generate`` would decode it."""
        return (adapter_key is None and params.temperature == 0 and params.repetition_penalty == 1.0
                and not params.no_repeat_ngram_size and not params.extra and not params.compile)

    def prompt_ids(self, prompt: Prompt, chat: bool, max_new_tokens: int) -> list[int]:
        """The prompt's token ids, as ``generate`` would read them (``InputError`` past the window)."""
        texts, specials = self.model.prompt_texts([prompt], chat)
        ids = self.tokenizer(texts[0], add_special_tokens=specials)["input_ids"]
        self.model.check_window(len(ids), max_new_tokens)
        return ids

    def submit(self, ids: list[int], max_new_tokens: int, on_text: OnText, stream: bool) -> str:
        """Queue a request; ``on_text(text, tokens, finished)`` is called on the event loop
        (call this from it) with the text so far: after each step with ``stream``, else once
        at the end (decoding every step costs the event loop, and the manager's thread the
        interpreter lock). Returns its id."""
        request_id = f"nlpapp-{uuid.uuid4().hex}"

        def update(result: Any) -> None:
            tokens = list(result.generated_tokens)
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).rstrip("\ufffd")  # no half character
            on_text(text, len(tokens), result.is_finished())

        self.manager.register_result_handler(request_id, update)  # before the request: no result can come first
        if self.manager.add_request(ids, request_id=request_id, max_new_tokens=max_new_tokens,
                                    streaming=stream) is None:
            raise RuntimeError("continuous batching is not taking requests (its thread stopped)")
        return request_id

    def cancel(self, request_id: str) -> None:
        self.manager.cancel_request(request_id)

    def stop(self, timeout: float | None = None) -> None:
        self.manager.stop(block=True, timeout=timeout)
