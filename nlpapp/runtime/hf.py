"""The Hugging Face backend: one ``Model`` subclass per family, on transformers 5.

Tasks call the capability methods of ``nlpapp.model.Model``; this module owns how each
family tokenizes, pads, runs forward under ``torch.inference_mode`` and decodes."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, ModelLoadError, UnsafeModelError
from ..model import Model, StreamCallback
from ..types import GenerationParams, LoadOptions, ModelFamily, Span
from .device import resolve_device, resolve_dtype, torch_dtype

# peft calls a transformers method that transformers 5 deprecated; not the user's concern
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
QA_WINDOW_TOKENS = 384  # the usual SQuAD window; long contexts are covered by strided windows
# Texts are cut to max_tokens * MAX_CHARS_PER_TOKEN characters before tokenizing: sub-word tokens
# average 3-5 characters, so this keeps every token truncation keeps, unless the text is made
# of unbroken strings longer than this (which WordPiece turns into single [UNK] tokens).
MAX_CHARS_PER_TOKEN = 64


def detect_family(config: Any) -> ModelFamily:
    """Read the family from a config's architectures, falling back to its shape."""
    for arch in getattr(config, "architectures", None) or []:
        if arch.endswith("ForQuestionAnswering"):
            return ModelFamily.EXTRACTIVE_QA
        if arch.endswith("ForSequenceClassification"):
            return ModelFamily.SEQUENCE_CLASSIFICATION
        if getattr(config, "is_encoder_decoder", False):
            return ModelFamily.SEQ2SEQ_LM
        if arch.endswith(("ForCausalLM", "LMHeadModel")):
            return ModelFamily.CAUSAL_LM
    if getattr(config, "is_encoder_decoder", False):
        return ModelFamily.SEQ2SEQ_LM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    encoder_only = {"bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2",
                    "albert", "mpnet", "modernbert"}
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in encoder_only:
        return ModelFamily.CAUSAL_LM
    return ModelFamily.ENCODER


def auto_class(family: ModelFamily) -> Any:
    import transformers as tf

    return {ModelFamily.CAUSAL_LM: tf.AutoModelForCausalLM,
            ModelFamily.SEQ2SEQ_LM: tf.AutoModelForSeq2SeqLM,
            ModelFamily.SEQUENCE_CLASSIFICATION: tf.AutoModelForSequenceClassification,
            ModelFamily.EXTRACTIVE_QA: tf.AutoModelForQuestionAnswering,
            ModelFamily.ENCODER: tf.AutoModel}[family]


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


def load_hf_model(path: str, family: str | None, options: LoadOptions,
                  config_overrides: dict[str, Any] | None = None) -> "HFModel":
    import transformers as tf

    tf.utils.logging.set_verbosity_error()  # nlpapp reports problems itself, in one line
    tf.utils.logging.disable_progress_bar()
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    common = {"trust_remote_code": options.trust_remote_code}
    try:
        config = tf.AutoConfig.from_pretrained(path, **common, **(config_overrides or {}))
        tokenizer = tf.AutoTokenizer.from_pretrained(path, **common)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_explain_load_failure(path, exc, options)) from exc
    chosen = ModelFamily(family) if family else detect_family(config)
    try:
        model = auto_class(chosen).from_pretrained(
            path, config=config, dtype=torch_dtype(dtype),
            use_safetensors=_weights_policy(path, options), **common)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_explain_load_failure(path, exc, options)) from exc
    model.to(device).eval()
    cls = {ModelFamily.CAUSAL_LM: CausalLM, ModelFamily.SEQ2SEQ_LM: Seq2SeqLM,
           ModelFamily.SEQUENCE_CLASSIFICATION: SequenceClassifier,
           ModelFamily.EXTRACTIVE_QA: ExtractiveQA, ModelFamily.ENCODER: Encoder}[chosen]
    return cls(path, model, tokenizer, device=device, dtype=dtype)


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
    """Shared tokenizer handling for every family."""

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
        if tokenizer.pad_token is None:  # causal LMs often ship without one
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token

    def load_adapter(self, name: str, folder: str) -> None:
        from peft import PeftModel

        if isinstance(self.hf_model, PeftModel):
            if name not in self.hf_model.peft_config:
                self.hf_model.load_adapter(folder, adapter_name=name)
        else:
            self.hf_model = PeftModel.from_pretrained(self.hf_model, folder, adapter_name=name)
        self.hf_model.to(self.device).eval()
        self.activate_adapter(name)

    def activate_adapter(self, name: str | None) -> None:
        if not _is_peft_model(self.hf_model):
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

    def head(self, texts: Sequence[str], max_tokens: int | None = None) -> list[str]:
        """Each text cut to the characters that can matter for ``max_tokens`` tokens (default:
        the model's window), so a huge input is not tokenized whole only to be truncated."""
        limit = (max_tokens or self.max_input_tokens or 0) * MAX_CHARS_PER_TOKEN
        return [t[:limit] for t in texts] if limit else list(texts)

    def truncate(self, text: str, max_tokens: int) -> str:
        text = self.head([text], max_tokens)[0]
        encoded = self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_tokens,
                                 return_offsets_mapping=self.tokenizer.is_fast)
        if self.tokenizer.is_fast and encoded["offset_mapping"]:
            return text[: encoded["offset_mapping"][-1][1]]
        return self.tokenizer.decode(encoded["input_ids"], skip_special_tokens=True)

    def _to_device(self, batch: Any) -> Any:
        return {k: v.to(self.device) for k, v in batch.items()}


def _context_window(config: Any, tokenizer: Any) -> int | None:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else None


def _make_streamer(tokenizer: Any, callback: StreamCallback) -> Any:
    """A transformers streamer that hands each finished piece of text to ``callback``."""
    from transformers import TextStreamer

    class CallbackStreamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                callback(text)

    return CallbackStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


def _is_peft_model(model: Any) -> bool:
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

    def _generate_kwargs(self, params: GenerationParams) -> dict[str, Any]:
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
        kwargs.update(params.extra)
        return kwargs

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        """Tokenized prompts, and how many leading output positions are not generated text."""
        raise NotImplementedError

    def generate(self, prompts: Sequence[str], params: GenerationParams, *,
                 chat: bool = True, stream: StreamCallback | None = None) -> list[str]:
        import torch

        encoded, skip = self._prepare(prompts, params, chat)
        kwargs = self._generate_kwargs(params)
        if stream is not None and len(prompts) == 1:
            kwargs["streamer"] = _make_streamer(self.tokenizer, stream)
        with torch.inference_mode():
            output = self.hf_model.generate(**self._to_device(encoded), **kwargs)
        return self.tokenizer.batch_decode(output[:, skip:], skip_special_tokens=True)

    def generate_scored(self, prompts: Sequence[str], params: GenerationParams, *,
                        chat: bool = True) -> list[tuple[str, float]]:
        import torch

        encoded, skip = self._prepare(prompts, params, chat)
        with torch.inference_mode():
            output = self.hf_model.generate(**self._to_device(encoded), **self._generate_kwargs(params),
                                            return_dict_in_generate=True, output_scores=True)
            logp = self.hf_model.compute_transition_scores(output.sequences, output.scores,
                                                           normalize_logits=True).float().cpu()
        generated = output.sequences[:, skip:].cpu()
        real = generated != self.tokenizer.pad_token_id
        mean_logp = (logp * real).sum(1) / real.sum(1).clamp(min=1)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [(text, math.exp(float(lp))) for text, lp in zip(texts, mean_logp)]


class CausalLM(_Generator):
    family = ModelFamily.CAUSAL_LM

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.tokenizer.padding_side = "left"  # generation appends on the right

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        if chat and self.has_chat_template:
            texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                        add_generation_prompt=True) for p in prompts]
            encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        else:
            encoded = self.tokenizer(list(prompts), return_tensors="pt", padding=True)
        length = encoded["input_ids"].shape[1]
        if self.max_input_tokens and length + params.max_new_tokens > self.max_input_tokens:
            raise InputError(f"prompt is {length} tokens; with --max-new-tokens {params.max_new_tokens} "
                             f"it exceeds the model's window of {self.max_input_tokens} tokens; shorten it")
        return encoded, length


class Seq2SeqLM(_Generator):
    family = ModelFamily.SEQ2SEQ_LM

    def _prepare(self, prompts: Sequence[str], params: GenerationParams, chat: bool) -> tuple[Any, int]:
        encoded = self.tokenizer(self.head(prompts), return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_input_tokens)
        return encoded, 1  # the output starts with the decoder's start token


class SequenceClassifier(HFModel):
    family = ModelFamily.SEQUENCE_CLASSIFICATION

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        id2label = self.config.id2label or {}
        self.labels = tuple(str(id2label.get(i, f"LABEL_{i}")) for i in range(self.config.num_labels))

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        encoded = self.tokenizer(self.head(texts), return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_input_tokens)
        with torch.inference_mode():
            logits = self.hf_model(**self._to_device(encoded)).logits.float()
        if getattr(self.config, "problem_type", None) == "multi_label_classification":
            probs = logits.sigmoid()
        else:
            probs = logits.softmax(dim=-1)
        return [dict(zip(self.labels, row)) for row in probs.cpu().tolist()]


class Encoder(HFModel):
    family = ModelFamily.ENCODER

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        encoded = self._to_device(self.tokenizer(self.head(texts), return_tensors="pt", padding=True,
                                                 truncation=True, max_length=self.max_input_tokens))
        with torch.inference_mode():
            hidden = self.hf_model(**encoded).last_hidden_state.float()
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # mean over real tokens
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().tolist()


class ExtractiveQA(HFModel):
    family = ModelFamily.EXTRACTIVE_QA

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
        with torch.inference_mode():
            out = self.hf_model(**self._to_device(encoded))
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
