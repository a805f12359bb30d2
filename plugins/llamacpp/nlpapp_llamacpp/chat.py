"""The GGUF file's own chat template (metadata ``tokenizer.chat_template``), rendered the
way transformers renders a tokenizer's (``apply_chat_template(..., add_generation_prompt=True)``):
llama-cpp-python's ``Jinja2ChatFormatter`` uses the same sandboxed Jinja environment
(trim_blocks, lstrip_blocks, loopcontrols, transformers' ``tojson``) and the same variables
(messages, bos_token, eos_token, add_generation_prompt, raise_exception, strftime_now), so the
PyTorch and llama.cpp backends feed a model the same text."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nlpapp import InputError

TEMPLATE_KEY = "tokenizer.chat_template"


class ChatTemplate:
    """Renders a conversation (``{"role", "content"}`` messages) to the prompt text, ending
    with the assistant's turn opened."""

    def __init__(self, template: str, *, bos_token: str, eos_token: str):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.source = template
        self._formatter = Jinja2ChatFormatter(template=template, bos_token=bos_token, eos_token=eos_token,
                                              add_generation_prompt=True)

    @classmethod
    def of(cls, llama: Any) -> "ChatTemplate | None":
        """The template ``llama`` (a ``llama_cpp.Llama``) carries, or ``None`` without one."""
        template = llama.metadata.get(TEMPLATE_KEY)
        if not template:
            return None
        return cls(template, bos_token=token_text(llama, llama.token_bos()),
                   eos_token=token_text(llama, llama.token_eos()))

    def render(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt text. Raises ``InputError`` when the template rejects the conversation
        (its own ``raise_exception``, e.g. roles that do not alternate)."""
        try:
            return self._formatter(messages=[dict(m) for m in messages]).prompt
        except ValueError as exc:
            raise InputError(f"the model's chat template refused the conversation: {exc}") from exc


def token_text(llama: Any, token: int) -> str:
    """A special token's text (``<|im_start|>``), or "" where the vocabulary has none (-1)."""
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")
