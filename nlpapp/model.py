"""The model interface tasks program against.

A ``Model`` is what the ``load_model`` hook returns: the built-in Hugging Face backend
(``nlpapp.runtime.hf``), the deterministic fake used in tests, or any plugin's backend.
Each capability a head lacks raises ``UnsupportedModelError`` with a message that says
what the model is and what to use instead.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, Union

from .errors import UnsupportedModelError
from .head import Head
from .types import GenerationParams, Span

# Texts are cut to (tokens they may keep) x CHARS_PER_TOKEN characters before tokenizing, so a
# huge input costs what a window costs: sub-word tokens average 3-5 characters, so this keeps
# every token the exact truncation keeps, unless the text is made of unbroken strings longer
# than this (which WordPiece turns into single [UNK] tokens). Used by the stages and backends.
CHARS_PER_TOKEN = 64

StreamCallback = Callable[[str], None]  # receives each new piece of generated text
Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": text}
Prompt = Union[str, Sequence[Message]]  # a text, or a conversation for the chat template


class Model:
    """Base class with the capability methods; subclasses override what they support."""

    name: str = "model"
    head: str = Head.CAUSAL_LM  # the registered head it has (``nlpapp.head``)
    device: str = "cpu"
    dtype: str = "float32"
    model_type: str = ""  # the architecture name, e.g. "llama", "t5", "bert"
    max_input_tokens: int | None = None  # the context window, when known
    labels: tuple[str, ...] = ()  # classifier labels, from the model config
    has_chat_template: bool = False

    def _unsupported(self, capability: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"model {self.name!r} has the head {self.head!r} and cannot {capability}; "
            f"pass --model with a model that has a suitable head")

    @property
    def family(self) -> str:
        """The old name of ``head``, kept for plugins written before heads were registered."""
        return self.head

    def trainable_module(self) -> "Any":
        """The torch module that training wraps with LoRA; backends without one cannot be trained."""
        raise UnsupportedModelError(
            f"model {self.name!r} comes from a backend ({type(self).__name__}) that cannot be trained; "
            "train a Hugging Face model (a folder or hub id) instead")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def truncate(self, text: str, max_tokens: int) -> str:
        """Return ``text`` cut to at most ``max_tokens`` tokens."""
        return " ".join(text.split()[:max_tokens])

    def generate(self, prompts: Sequence[str], params: GenerationParams, *,
                 chat: bool = True, stream: StreamCallback | None = None) -> list[str]:
        """Continue each prompt (causal LM) or transduce it (seq2seq). With ``chat``, a
        causal model whose tokenizer has a chat template gets the prompt as a user turn."""
        raise self._unsupported("generate text")

    mixes_adapters: bool = False  # whether generate_each takes a different adapter per row

    def generate_each(self, prompts: Sequence[Prompt], params: GenerationParams, *, chat: bool = True,
                      streams: Sequence[StreamCallback | None] | None = None,
                      adapters: Sequence[str | None] | None = None) -> list[str]:
        """Like ``generate``, for a batch of independent requests (a server's): a prompt may
        be a conversation (messages, through the chat template), ``streams[i]``, when
        given, receives row ``i``'s text as it is made, and ``adapters[i]`` names the loaded
        adapter row ``i`` runs with (``None``: the base model) where ``mixes_adapters``. This
        default streams a row only in a batch of one and takes a conversation only when it
        is one user message; backends override it to do both for any batch.

        :raises UnsupportedModelError: a conversation of several messages (no chat template),
            or rows with different adapters on a model that does not mix them."""
        if adapters is not None:
            self.activate_one_adapter(adapters)
        texts = [single_user_turn(self, p) if not isinstance(p, str) else p for p in prompts]
        chat = chat or any(not isinstance(p, str) for p in prompts)
        stream = streams[0] if streams and len(prompts) == 1 else None
        outputs = self.generate(texts, params, chat=chat, stream=stream)
        if streams and len(prompts) > 1:  # not streamed as made: each row whole, once done
            for callback, text in zip(streams, outputs):
                if callback is not None and text:
                    callback(text)
        return outputs

    def activate_one_adapter(self, adapters: Sequence[str | None]) -> None:
        """Activate the one adapter every row names (``UnsupportedModelError`` if they differ)."""
        if len(set(adapters)) > 1:
            raise self._unsupported("run different adapters in one batch")
        self.activate_adapter(adapters[0] if adapters else None)

    def generate_scored(self, prompts: Sequence[str], params: GenerationParams, *,
                        chat: bool = True) -> list[tuple[str, float]]:
        """Like ``generate``, each text with the geometric-mean probability of its tokens."""
        raise self._unsupported("generate text")

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Return one ``{label: probability}`` per text, from the model's own head."""
        raise self._unsupported("classify text with a trained head")

    def extract_answers(self, questions: Sequence[str], contexts: Sequence[str], *,
                        max_answer_tokens: int = 30, stride: int = 128) -> list[Span]:
        """Return the best answer span in each context."""
        raise self._unsupported("extract answer spans")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one L2-normalised sentence embedding per text."""
        raise self._unsupported("embed text")

    def load_adapter(self, name: str, folder: str) -> None:
        """Attach a trained adapter under ``name`` (it stays resident beside the others)."""
        raise self._unsupported("load adapters")

    def activate_adapter(self, name: str | None) -> None:
        """Use adapter ``name`` for the next calls, or none with ``None``; no reload."""
        if name is not None:
            raise self._unsupported("load adapters")


def single_user_turn(model: Model, conversation: Sequence[Message]) -> str:
    if len(conversation) == 1 and conversation[0].get("role") == "user":
        return conversation[0]["content"]
    raise UnsupportedModelError(f"model {model.name!r} takes a conversation of several messages only through its "
                                "chat template, and it has none here; send one user message or a plain prompt")
