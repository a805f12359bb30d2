"""The Hugging Face backend: one ``Model`` subclass per built-in head, on transformers 5.

Tasks call the capability methods of ``nlpapp.model.Model``; this module owns how each
head tokenizes, pads, runs forward under ``torch.inference_mode`` and decodes. A plugin
that brings a head subclasses ``HFModel`` for its own capabilities."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from ..errors import InputError, ModelLoadError, UnsafeModelError
from ..model import CHARS_PER_TOKEN, Model, Prompt, StreamCallback, single_user_turn
from ..head import Head
from ..log import warn
from ..types import GenerationParams, LoadOptions, Span
from . import cancel
from ..optimization.prune import PRUNED_HEADS_KEY
from .device import resolve_device, resolve_dtype, torch_dtype
from .trust import remote_code_policy

if TYPE_CHECKING:
    from ..head import ModelHead
    from ..registry import Registry

# torchao (quantized models) logs each CUDA-only extension it cannot load on a CPU build,
# and torch warns about torchao's enum registration: neither is the user's concern
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)
# peft calls a transformers method that transformers 5 deprecated; not the user's concern
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
QA_WINDOW_TOKENS = 384  # the usual SQuAD window; long contexts are covered by strided windows


ENCODER_ONLY = {"bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2",
                "albert", "mpnet", "modernbert"}


def detect_head(config: Any, heads: Iterable["ModelHead"]) -> str:
    """The head a checkpoint has: the one nlpapp saved in its config (``nlpapp_head``, by a
    merge) if registered, else the first registered head that claims one of the config's
    ``architectures``; without any, its shape (encoder-decoder, a causal-LM
    architecture, else a bare encoder)."""
    heads = list(heads)
    saved = getattr(config, "nlpapp_head", None)  # written by adapters merge
    if saved in {head.name for head in heads}:
        return saved
    for arch in getattr(config, "architectures", None) or []:
        for head in heads:
            if head.detects(config, arch):
                return head.name
    if getattr(config, "is_encoder_decoder", False):
        return Head.SEQ2SEQ_LM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in ENCODER_ONLY:
        return Head.CAUSAL_LM
    return Head.ENCODER


def _weights_policy(path: str, options: LoadOptions) -> bool | None:
    """``use_safetensors`` for from_pretrained; refuses a folder of pickle-only weights."""
    folder = Path(path)
    if not folder.is_dir():  # a hub id: insist on safetensors unless the user opted in
        return None if options.allow_pickle else True
    if any(folder.glob("*.safetensors")):
        return True
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles and not options.allow_pickle:
        raise UnsafeModelError(
            f"{path} has only pickle weights ({', '.join(pickles)}), which can run code when "
            "loaded; pass --allow-pickle if you trust the source")
    if not pickles:
        raise ModelLoadError(f"{path} has no model weights (no *.safetensors file)")
    return False


def _source_kwargs(path: str, options: LoadOptions) -> dict[str, Any]:
    """``trust_remote_code``, and for a hub id the ``revision`` asked for."""
    kwargs: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    if options.revision and not Path(path).is_dir():
        kwargs["revision"] = options.revision
    return kwargs


def read_config(path: str, options: LoadOptions) -> Any:
    """The transformers config of a folder or hub id, or a ``ModelLoadError`` in one line."""
    import transformers as tf

    tf.utils.logging.set_verbosity_error()  # nlpapp reports problems itself, in one line
    tf.utils.logging.disable_progress_bar()
    try:
        return tf.AutoConfig.from_pretrained(path, **_source_kwargs(path, options))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_explain_load_failure(path, exc, options)) from exc


def load_hf_model(path: str, head: str | None, options: LoadOptions, labels: tuple[str, ...] | None = None,
                  heads: "Registry[ModelHead] | None" = None) -> "HFModel":
    """Load ``path`` with the registered ``head`` (detected from the config when ``None``);
    ``labels`` give a head that ``uses_labels`` one output per label (a new head, or an
    adapter's trained one). ``heads``: the registered heads (default: the built-in ones)."""
    import transformers as tf

    if heads is None:
        from .heads import builtin_registry

        heads = builtin_registry()
    config = read_config(path, options)
    chosen = heads.get(head) if head else heads.get(detect_head(config, heads))
    if labels:
        for key, value in chosen.label_config(tuple(labels)).items():
            setattr(config, key, value)
    common = _source_kwargs(path, options)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    quantize: dict[str, Any] = {}
    if options.quantization:
        from ..optimization.quantize import quantization_config

        quantize["quantization_config"] = quantization_config(options.quantization, device)
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(path, **common)
        auto_class = getattr(tf, chosen.auto_class)
        if getattr(config, PRUNED_HEADS_KEY, None):  # shapes transformers cannot build by itself
            from ..optimization.prune import load_head_pruned

            if quantize:
                raise ModelLoadError(f"{path} has pruned attention heads, whose shapes nlpapp rebuilds itself and "
                                     "transformers' quantizers cannot load; quantize the unpruned model, or use "
                                     "this one unquantized")
            model = load_head_pruned(auto_class, path, config, torch_dtype(dtype))
        else:
            model = auto_class.from_pretrained(path, config=config, dtype=torch_dtype(dtype),
                                               use_safetensors=_weights_policy(path, options), **common, **quantize)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_explain_load_failure(path, exc, options)) from exc
    if not (getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)):
        model.to(device)  # bitsandbytes places its weights itself and refuses to be moved
    model.eval()
    wrapped = chosen.model_class(path, model, tokenizer, device=device, dtype=dtype)
    wrapped.head = chosen.name  # a plugin's head may reuse a built-in wrapper class
    wrapped.trust_remote_code = options.trust_remote_code
    return wrapped


def _explain_load_failure(path: str, exc: Exception, options: LoadOptions) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "trust_remote_code" in str(exc) and not options.trust_remote_code:
        return (f"{path} needs custom code from its repository to load; pass --trust-remote-code "
                "only if you trust its author")
    if not Path(path).exists():
        lowered = str(exc).lower()
        if any(w in lowered for w in ("connect", "offline", "network", "resolve", "internet", "timed out")):
            return (f"could not fetch {path!r} from the Hugging Face Hub: no network connection. "
                    "Use a local folder, a .gguf file or a registered model (nlpapp models)")
        return (f"model {path!r} is not a local folder or file, a registered model, or a hub id "
                f"that could be fetched ({text}); see nlpapp models")
    return f"cannot load model from {path}: {text}"


class HFModel(Model):
    """A loaded Hugging Face model: its torch module (``hf_model``), tokenizer and config,
    with the tokenizer handling every head shares. A plugin's head subclasses it and calls
    ``forward`` (which owns ``inference_mode`` and device placement)."""

    # whether generate() may run code shipped with a model (transformers' custom_generate):
    # what the user allowed when it was loaded, whatever generate kwargs a task passes
    trust_remote_code = False

    def __init__(self, path: str, model: Any, tokenizer: Any, *, device: str, dtype: str):
        self.name = path
        self.hf_model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self.device = device
        self.dtype = dtype
        self.model_type = model.config.model_type
        self.max_input_tokens = _context_window(model.config, tokenizer)
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._warned_cut = False  # encode_whole warns once per model
        if tokenizer.pad_token is None:  # causal LMs often ship without one
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token

    def load_adapter(self, name: str, folder: str) -> None:
        """Attach the LoRA adapter in ``folder`` as ``name`` and make it active. Raises
        ``ModelLoadError`` naming the file when its config cannot be read or its weights do
        not fit this model (missing, unexpected or differently shaped tensors); the model is
        then left as it was."""
        from .adapters import attach

        self.hf_model = attach(self.hf_model, Path(folder), name)
        self.hf_model.to(self.device).eval()
        self.activate_adapter(name)

    def activate_adapter(self, name: str | None) -> None:
        if not is_peft_model(self.hf_model):
            if name is not None:
                raise ModelLoadError(f"adapter {name!r} is not loaded on {self.name}")
            return
        if name is None:
            self.hf_model.base_model.disable_adapter_layers()
        else:
            self.hf_model.base_model.enable_adapter_layers()
            self.hf_model.set_adapter(name)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def clip_chars(self, texts: Sequence[str], max_tokens: int | None = None) -> list[str]:
        """Each text cut to the characters that can matter for ``max_tokens`` tokens (default:
        the model's window), so a huge input is not tokenized whole only to be truncated."""
        limit = (max_tokens or self.max_input_tokens or 0) * CHARS_PER_TOKEN
        return [t[:limit] for t in texts] if limit else list(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        text = self.clip_chars([text], max_tokens)[0]
        encoded = self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_tokens,
                                 return_offsets_mapping=self.tokenizer.is_fast)
        if self.tokenizer.is_fast and encoded["offset_mapping"]:
            return text[: encoded["offset_mapping"][-1][1]]
        return self.tokenizer.decode(encoded["input_ids"], skip_special_tokens=True)

    def _to_device(self, batch: Any) -> Any:
        return {k: v.to(self.device) for k, v in batch.items()}

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
               max_tokens: int | None = None, **tokenizer_kwargs: Any) -> Any:
        """Tokenize a batch for one forward pass: padded, cut to ``max_tokens`` (default: the
        model's window), as tensors (``BatchEncoding``: ``word_ids(i)``, offsets if asked)."""
        limit = max_tokens or self.max_input_tokens
        args = (self.clip_chars(texts, limit),) + ((self.clip_chars(pairs, limit),) if pairs else ())
        return self.tokenizer(*args, return_tensors="pt", padding=True, truncation=True, max_length=limit,
                              **tokenizer_kwargs)

    def encode_whole(self, texts: Sequence[str]) -> Any:
        """``encode`` for a head that reads each text in one window (a classifier, an
        encoder): a text longer than the window is cut to it, as transformers' pipelines do,
        and the first time that happens on this model a warning says so (with the longest
        length). Only texts that fill the window are counted again, so short ones cost nothing."""
        encoded = self.encode(texts)
        window = self.max_input_tokens
        if window and not self._warned_cut and encoded["input_ids"].shape[1] >= window:
            bound = window * CHARS_PER_TOKEN  # a text cut to this by its task's stage was reported there
            full = [t for t, n in zip(texts, encoded["attention_mask"].sum(1).tolist()) if n >= window and len(t) < bound]
            specials = self.tokenizer.num_special_tokens_to_add()
            lengths = [n + specials for n in self.count_tokens(self.clip_chars(full))] if full else []
            cut = [n for n in lengths if n > window]
            if cut:
                self._warned_cut = True
                warn(f"{len(cut)} input(s) longer than {self.name}'s window of {window} tokens were cut to it "
                     f"(the longest: {max(cut):,} tokens); only the start of each is read (said once per model)")
        return encoded

    def forward(self, encoded: Any) -> Any:
        """The torch module's outputs on ``encoded`` (from ``encode``), under
        ``torch.inference_mode`` on the model's device; keys the model does not take
        (``offset_mapping``, ``overflow_to_sample_mapping``) are left out."""
        import torch

        inputs = {k: v for k, v in encoded.items() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        with torch.inference_mode():
            return self.hf_model(**self._to_device(inputs))

    def trainable_module(self) -> Any:
        return self.hf_model


# Encoders whose position ids start after the padding index (transformers' RobertaEmbeddings
# and its copies: create_position_ids_from_input_ids counts from padding_idx + 1).
POSITIONS_AFTER_PADDING = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "ibert",
                           "longformer", "luke", "mpnet", "roberta-prelayernorm", "xmod"}
# Models with relative positions (T5) have no table; this is the length T5 was pretrained on.
UNBOUNDED_FALLBACK_TOKENS = 512


def _context_window(config: Any, tokenizer: Any) -> int | None:
    """Tokens one input may hold: the smaller of the config's positional limit and the
    tokenizer's ``model_max_length`` (when a real number, not transformers' VERY_LARGE_INTEGER).

    Per family, from transformers' modeling code:
    - RoBERTa/XLM-R and copies: positions run from ``padding_idx + 1``, so
      ``max_position_embeddings - pad_token_id - 1`` are usable (514 - 1 - 1 = 512);
    - BART/mBART: BartLearnedPositionalEmbedding adds its offset of 2 to a table of
      ``max_position_embeddings + 2``, so all ``max_position_embeddings`` are usable;
    - BERT, DistilBERT, Marian (sinusoidal, no offset), Llama, Qwen (rotary): as configured;
      a pad token does not move their positions;
    - T5: relative positions, no limit in the config; the tokenizer's, else 512."""
    positions = None
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            positions = value
            break
    if positions and getattr(config, "model_type", None) in POSITIONS_AFTER_PADDING:
        pad = getattr(config, "pad_token_id", None)
        positions -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
    limit = getattr(tokenizer, "model_max_length", None)
    limit = limit if isinstance(limit, int) and 0 < limit < 1_000_000 else None
    known = [n for n in (positions, limit) if n]
    if known:
        return min(known)
    return UNBOUNDED_FALLBACK_TOKENS if getattr(config, "model_type", None) in ("t5", "mt5", "umt5") else None


def _make_streamer(tokenizer: Any, callback: StreamCallback) -> Any:
    """A transformers streamer that hands each finished piece of text to ``callback``."""
    from transformers import TextStreamer

    class CallbackStreamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                callback(text)

    return CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def is_peft_model(model: Any) -> bool:
    """Without importing peft, which adds a tenth of a second or more to a model's first
    load: a peft model cannot exist before something imported peft."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def _compile_config(device: str) -> Any:
    """How transformers' generate() compiles its decoding step over a static cache: CUDA
    graphs on a GPU; plain inductor code elsewhere, where generate() compiles only when told."""
    from transformers import CompileConfig

    on_gpu = device.startswith("cuda")
    config = CompileConfig(mode="reduce-overhead" if on_gpu else "default")
    config._compile_all_devices = True  # transformers' own (private) flag for compiling off CUDA
    return config


class _Generator(HFModel):
    """generate() for causal and seq2seq models."""

    def _generate_kwargs(self, params: GenerationParams, prompt_positions: int) -> dict[str, Any]:
        """transformers ``generate`` kwargs; ``prompt_positions``: leading positions of each
        output row that are not generated text (what ``_prepare`` returns)."""
        import torch

        kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens,
                                  "repetition_penalty": params.repetition_penalty,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if params.compile:
            kwargs.update(cache_implementation="static", compile_config=_compile_config(self.device))
        if params.no_repeat_ngram_size:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [GeneratedNoRepeatNGram(params.no_repeat_ngram_size, prompt_positions)])
        if cancel.active():  # a server's batch: stop at the next token once no one waits for it
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopRequested()])
        kwargs.update(params.extra)
        return kwargs

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        """Tokenized prompts, and how many leading output positions are not generated text."""
        raise NotImplementedError

    def generate(self, prompts: Sequence[str], params: GenerationParams, *,
                 chat: bool = True, stream: StreamCallback | None = None) -> list[str]:
        import torch

        encoded, skip = self._prepare(prompts, params, chat)
        kwargs = self._generate_kwargs(params, skip)
        if stream is not None and len(prompts) == 1:
            kwargs["streamer"] = _make_streamer(self.tokenizer, stream)
        with torch.inference_mode(), remote_code_policy(self.trust_remote_code):
            output = self.hf_model.generate(**self._to_device(encoded), **kwargs)
        return self.tokenizer.batch_decode(output[:, skip:], skip_special_tokens=True)

    @property
    def mixes_adapters(self) -> bool:
        """LoRA adapters (without DoRA) run side by side in one batch: peft's ``adapter_names``."""
        if not is_peft_model(self.hf_model):
            return False
        return all(str(getattr(c, "peft_type", "")).endswith("LORA") and not getattr(c, "use_dora", False)
                   for c in self.hf_model.peft_config.values())

    def generate_each(self, prompts: Sequence[Prompt], params: GenerationParams, *, chat: bool = True,
                      streams: Sequence[StreamCallback | None] | None = None,
                      adapters: Sequence[str | None] | None = None) -> list[str]:
        """Conversations go through the chat template (a causal model that has one), every
        row with a callback in ``streams`` streams, whatever the batch size, and rows with
        different ``adapters`` share the batch (peft's mixed-batch inference: the base
        weights run once, each adapter's LoRA product on its own rows)."""
        import torch

        kwargs: dict[str, Any] = {}
        if adapters is not None:
            if len(set(adapters)) == 1 or not self.mixes_adapters:
                self.activate_one_adapter(adapters)
            else:
                self.hf_model.base_model.enable_adapter_layers()
                kwargs["adapter_names"] = [name or "__base__" for name in adapters]

        if any(not isinstance(p, str) for p in prompts):
            chat = True
            if not (self.head == Head.CAUSAL_LM and self.has_chat_template):
                prompts = [p if isinstance(p, str) else single_user_turn(self, p) for p in prompts]
        encoded, skip = self._prepare(prompts, params, chat)
        kwargs.update(self._generate_kwargs(params, skip))
        if streams and any(streams):
            kwargs["streamer"] = RowStreamer(self.tokenizer, streams)
        with torch.inference_mode(), remote_code_policy(self.trust_remote_code):
            output = self.hf_model.generate(**self._to_device(encoded), **kwargs)
        # a row cut at max_new_tokens inside a character's bytes ends in U+FFFD: drop the half character
        return [text.rstrip("\ufffd") for text in self.tokenizer.batch_decode(output[:, skip:],
                                                                              skip_special_tokens=True)]

    def generate_scored(self, prompts: Sequence[str], params: GenerationParams, *,
                        chat: bool = True) -> list[tuple[str, float]]:
        import torch

        encoded, skip = self._prepare(prompts, params, chat)
        with torch.inference_mode(), remote_code_policy(self.trust_remote_code):
            output = self.hf_model.generate(**self._to_device(encoded), **self._generate_kwargs(params, skip),
                                            return_dict_in_generate=True, output_scores=True)
            logp = self.hf_model.compute_transition_scores(output.sequences, output.scores,
                                                           normalize_logits=True).float().cpu()
        generated = output.sequences[:, skip:].cpu()
        real = generated != self.tokenizer.pad_token_id
        mean_logp = (logp * real).sum(1) / real.sum(1).clamp(min=1)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [(text, math.exp(float(lp))) for text, lp in zip(texts, mean_logp)]


class RowStreamer:
    """A transformers streamer for a batch: each row's new text goes to its own callback
    (``None``: that row is not streamed). transformers' ``TextStreamer`` takes one row only.
    ``generate`` first puts the prompt (or the decoder's start token), then one token per
    row per step; a row's text is decoded whole each step and only what is new is sent,
    without a half character at its end (held back until whole; dropped if the row ends there)."""

    def __init__(self, tokenizer: Any, callbacks: Sequence[StreamCallback | None]):
        self.tokenizer, self.callbacks = tokenizer, list(callbacks)
        self.tokens: list[list[int]] = [[] for _ in self.callbacks]
        self.sent = [0] * len(self.callbacks)
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(len(self.callbacks), -1)[:, -1].tolist()):
            self.tokens[row].append(token)
        self._send()

    def end(self) -> None:
        self._send()

    def _send(self) -> None:
        for row, callback in enumerate(self.callbacks):
            if callback is None:
                continue
            text = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True).rstrip("\ufffd")
            if len(text) > self.sent[row]:
                callback(text[self.sent[row]:])
                self.sent[row] = len(text)


class _StopRequested:
    """A stopping criterion: every row is done once ``cancel.requested()`` (transformers
    calls it after each token with (batch, length) ids; it answers one bool per row)."""

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), cancel.requested(), dtype=torch.bool, device=input_ids.device)


class GeneratedNoRepeatNGram:
    """transformers' ``NoRepeatNGramLogitsProcessor`` on the generated tokens only. Given to a
    decoder-only model, transformers' own ``no_repeat_ngram_size`` also bans every n-gram of
    the prompt, so a summary or answer could not copy a name from its input; here the first
    ``prompt_positions`` of each row are left out. Scores: (batch, vocab) logits, changed in place."""

    def __init__(self, size: int, prompt_positions: int):
        from transformers import NoRepeatNGramLogitsProcessor

        self.banned = NoRepeatNGramLogitsProcessor(size)
        self.prompt_positions = prompt_positions

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        return self.banned(input_ids[:, self.prompt_positions:], scores)


class CausalLM(_Generator):
    head = Head.CAUSAL_LM

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tokenizer.padding_side = "left"  # generation appends on the right

    def prompt_texts(self, prompts: Sequence[Prompt], chat: bool) -> tuple[list[str], bool]:
        """The texts ``generate`` tokenizes for ``prompts`` (through the chat template with
        ``chat``, where there is one), and whether the tokenizer adds its special tokens."""
        if chat and self.has_chat_template:
            return [self.tokenizer.apply_chat_template([{"role": "user", "content": p}] if isinstance(p, str)
                                                       else [dict(m) for m in p], tokenize=False,
                                                       add_generation_prompt=True) for p in prompts], False
        return [p if isinstance(p, str) else single_user_turn(self, p) for p in prompts], True

    def check_window(self, length: int, max_new_tokens: int) -> None:
        """``InputError`` when a prompt of ``length`` tokens and the new tokens overflow the window."""
        if self.max_input_tokens and length + max_new_tokens > self.max_input_tokens:
            raise InputError(f"prompt is {length} tokens; with {max_new_tokens} new tokens (max_new_tokens) it "
                             f"exceeds the model's window of {self.max_input_tokens} tokens; shorten it")

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        texts, specials = self.prompt_texts(prompts, chat)
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=specials)
        length = encoded["input_ids"].shape[1]
        self.check_window(length, params.max_new_tokens)
        return encoded, length


class Seq2SeqLM(_Generator):
    head = Head.SEQ2SEQ_LM

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        with tokenizer_settings(self.tokenizer, params.tokenizer_settings):
            encoded = self.tokenizer(self.clip_chars(prompts), return_tensors="pt", padding=True, truncation=True,
                                     max_length=self.max_input_tokens)
        return encoded, 1  # the output starts with the decoder's start token


@contextlib.contextmanager
def tokenizer_settings(tokenizer: Any, settings: dict[str, Any]) -> Iterator[None]:
    """Set tokenizer attributes (NLLB's or mBART's ``src_lang``) for one call, then put back
    what was there: the tokenizer is shared by every user of the cached model."""
    missing = object()
    saved = {name: getattr(tokenizer, name, missing) for name in settings}
    try:
        for name, value in settings.items():
            setattr(tokenizer, name, value)
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(tokenizer, name)
            else:
                setattr(tokenizer, name, value)


class SequenceClassifier(HFModel):
    head = Head.SEQUENCE_CLASSIFICATION

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        id2label = self.config.id2label or {}
        self.labels = tuple(str(id2label.get(i, f"LABEL_{i}")) for i in range(self.config.num_labels))

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        logits = self.forward(self.encode_whole(texts)).logits.float()
        if getattr(self.config, "problem_type", None) == "multi_label_classification":
            probs = logits.sigmoid()
        else:
            probs = logits.softmax(dim=-1)
        return [dict(zip(self.labels, row)) for row in probs.cpu().tolist()]


class Encoder(HFModel):
    head = Head.ENCODER

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        encoded = self.encode_whole(texts)
        hidden = self.forward(encoded).last_hidden_state.float()
        mask = encoded["attention_mask"].to(hidden.device).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().tolist()


class ExtractiveQA(HFModel):
    head = Head.EXTRACTIVE_QA

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"{self.name}: extractive QA needs a fast tokenizer (character offsets)")
        self.tokenizer.padding_side = "right"

    def extract_answers(self, questions: Sequence[str], contexts: Sequence[str], *,
                        max_answer_tokens: int = 30, stride: int = 128) -> list[Span]:
        import torch

        window = min(QA_WINDOW_TOKENS, self.max_input_tokens or QA_WINDOW_TOKENS)
        longest_question = max(self.count_tokens(questions))
        room = window - longest_question - 3  # [CLS] q [SEP] c [SEP]
        if room < 16:
            raise InputError(f"question is {longest_question} tokens, too long for a {window}-token window")
        encoded = self.tokenizer(list(questions), list(contexts), truncation="only_second",
                                 max_length=window, stride=min(stride, room // 2),
                                 return_overflowing_tokens=True, return_offsets_mapping=True,
                                 padding=True, return_tensors="pt")
        sample_of_window = encoded.pop("overflow_to_sample_mapping").tolist()
        offsets = encoded.pop("offset_mapping").tolist()
        out = self.forward(encoded)
        start_logp = out.start_logits.float().log_softmax(-1).cpu()
        end_logp = out.end_logits.float().log_softmax(-1).cpu()
        best: list[tuple[float, int, int] | None] = [None] * len(questions)
        for w, sample in enumerate(sample_of_window):
            in_context = torch.tensor([s == 1 for s in encoded.sequence_ids(w)])
            found = best_span(start_logp[w], end_logp[w], in_context, max_answer_tokens)
            if found is None:
                continue
            logp, s, e = found
            char_span = (offsets[w][s][0], offsets[w][e][1])
            if best[sample] is None or logp > best[sample][0]:
                best[sample] = (logp, *char_span)
        spans = []
        for sample, found in enumerate(best):
            if found is None:
                spans.append(Span("", 0.0, 0, 0))
            else:
                logp, start, end = found
                spans.append(Span(contexts[sample][start:end], math.exp(logp), start, end))
        return spans


def best_span(start_logp: Any, end_logp: Any, allowed: Any, max_tokens: int) -> tuple[float, int, int] | None:
    """The (log-prob, start, end) maximising start+end log-probs over spans inside
    ``allowed`` tokens with start <= end < start + max_tokens; None if no token is allowed."""
    import torch

    if not bool(allowed.any()):
        return None
    scores = start_logp[:, None] + end_logp[None, :]
    n = scores.shape[0]
    idx = torch.arange(n)
    valid = (idx[None, :] >= idx[:, None]) & (idx[None, :] - idx[:, None] < max_tokens)
    valid &= allowed[:, None] & allowed[None, :]
    scores = scores.masked_fill(~valid, float("-inf"))
    flat = int(scores.argmax())
    start, end = divmod(flat, n)
    return float(scores[start, end]), start, end
