"""Tiny randomly initialised real models with every built-in head, built locally in seconds.

Each is a genuine transformers model (Llama, T5, BERT; more in ``CHECKPOINT_SHAPED``) with a WordPiece tokenizer made
on the spot, saved with ``save_pretrained``: the same loading code path as real weights,
no hub. Their outputs are noise; tests use them for shapes, plumbing and equivalence."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Acme was founded in 1990 by Jane Roe in Ohio.",
    "The weather is nice today and the sun is shining.",
    "Shares of the company rose after record quarterly profit.",
    "Oil prices fell as crude supply grew in the Gulf.",
    "The film was a waste of two hours, boring and awful.",
    "I loved every minute of this wonderful book.",
    "Who founded the company? Where is it based?",
    "Translate the following text into French. Summarize the article in one sentence.",
] * 4
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>"]
ROBERTA_SPECIALS = ["<s>", "[PAD]", "</s>", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # pad at 1, as roberta-base
VERY_LARGE = int(1e30)  # transformers' VERY_LARGE_INTEGER: the tokenizer states no limit
CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<s> assistant : {% endif %}")


def _vocab(specials: list[str] = SPECIALS) -> dict[str, int]:
    """Specials (in the order given), every word of the corpus, and single characters (alone and as ``##``
    continuations) so any text tokenizes. Built by sorting, not trained: WordPiece training
    breaks ties differently from one process to the next, and the models must not."""
    import re

    words = sorted({w for line in CORPUS for w in re.findall(r"\w+|[^\w\s]", line.lower())})
    chars = sorted({c for line in CORPUS for c in line.lower() if not c.isspace()})
    tokens = specials + [w for w in words if w not in specials] + [c for c in chars if c not in words] + [
        f"##{c}" for c in chars]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


def build_tokenizer(style: str, model_max_length: int | None = None, pad: str | None = "[PAD]"):
    """A fast WordPiece tokenizer over a fixed vocabulary; ``style`` is bert (pairs with [CLS]/[SEP]), roberta
    (<s> ... </s>, with the pad token at id 1 as roberta-base has it), t5 (ends with </s>) or causal (no specials
    added, a chat template); or ``bpe``: a byte-level BPE trained on the corpus, as Qwen2 and GPT-2 ship (transformers
    5 loads a qwen2 checkpoint's tokenizer as its byte-level ``Qwen2Tokenizer`` whatever the file says). ``pad``:
    the pad token, or None for none (as Llama ships)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if style == "bpe":
        return _byte_level_bpe(model_max_length, pad)

    specials = ROBERTA_SPECIALS if style == "roberta" else SPECIALS
    tok = Tokenizer(models.WordPiece(vocab=_vocab(specials), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    if style == "bert":
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token=pad,
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                       model_max_length=model_max_length or 128)
    if style == "roberta":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token=pad, bos_token="<s>",
                                       eos_token="</s>", cls_token="<s>", sep_token="</s>", mask_token="[MASK]",
                                       model_max_length=model_max_length or 512)
    if style == "t5":
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", ids["</s>"])])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token=pad,
                                       eos_token="</s>", model_max_length=model_max_length or 128)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token=pad,
                                   bos_token="<s>", eos_token="</s>", model_max_length=model_max_length or 256)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _byte_level_bpe(model_max_length: int | None, pad: str | None):
    """A byte-level BPE (vocabulary 400) trained on the corpus; the trainer is deterministic on it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=[eos, "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos if pad else None,
                                   model_max_length=model_max_length or 256)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(family: str, folder: Path, seed: int = 0) -> Path:
    """Build and save a tiny model with the head ``family`` (``causal-lm``, ``seq2seq-lm``,
    ``sequence-classification``, ``token-classification``, ``extractive-qa`` or ``encoder``),
    or one of ``CHECKPOINT_SHAPED``, in ``folder``."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    if family in CHECKPOINT_SHAPED:
        return _build_checkpoint_shaped(family, folder)
    style = {"causal-lm": "causal", "seq2seq-lm": "t5"}.get(family, "bert")
    tokenizer = build_tokenizer(style)
    vocab = len(tokenizer)
    if family == "causal-lm":
        config = tf.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id)
        model = tf.LlamaForCausalLM(config)
    elif family == "seq2seq-lm":
        config = tf.T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                             decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        model = tf.T5ForConditionalGeneration(config)
    else:
        config = tf.BertConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, max_position_embeddings=128,
                               pad_token_id=tokenizer.pad_token_id,
                               id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
        model = {"sequence-classification": tf.BertForSequenceClassification,
                 "token-classification": tf.BertForTokenClassification,
                 "extractive-qa": tf.BertForQuestionAnswering,
                 "encoder": tf.BertModel}[family](config)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Tiny models laid out like real checkpoints where position limits matter: the config's
# positional values and the tokenizer's model_max_length are the real ones; only sizes shrink.
# family: (tokenizer style, model_max_length, pad token, model class, config class, config values)
_SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4)
_SEQ2SEQ = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64)
CHECKPOINT_SHAPED = {
    # roberta-base: 514 positions, pad 1, tokenizer 512
    "roberta-classifier": ("roberta", 512, "[PAD]", "RobertaForSequenceClassification", "RobertaConfig",
                           dict(_SMALL, max_position_embeddings=514, type_vocab_size=1,
                                id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})),
    "roberta-encoder": ("roberta", 512, "[PAD]", "RobertaModel", "RobertaConfig",
                        dict(_SMALL, max_position_embeddings=514, type_vocab_size=1)),
    # xlm-roberta-base: as roberta-base
    "xlm-roberta": ("roberta", 512, "[PAD]", "XLMRobertaModel", "XLMRobertaConfig",
                    dict(_SMALL, max_position_embeddings=514, type_vocab_size=1)),
    # distilbert-base-uncased: 512 positions, pad 0, tokenizer 512
    "distilbert": ("bert", 512, "[PAD]", "DistilBertModel", "DistilBertConfig",
                   dict(dim=32, hidden_dim=64, n_layers=1, n_heads=4, max_position_embeddings=512)),
    # facebook/bart-base: 1024 positions (the table holds 1026), pad 1, tokenizer 1024
    "bart": ("roberta", 1024, "[PAD]", "BartForConditionalGeneration", "BartConfig",
             dict(_SEQ2SEQ, max_position_embeddings=1024)),
    # t5-small: relative positions, tokenizer 512; t5-unbounded: a tokenizer stating no limit
    "t5": ("t5", 512, "[PAD]", "T5ForConditionalGeneration", "T5Config",
           dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)),
    "t5-unbounded": ("t5", VERY_LARGE, "[PAD]", "T5ForConditionalGeneration", "T5Config",
                     dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)),
    # Helsinki-NLP/opus-mt-en-de: 512 sinusoidal positions, tokenizer 512
    "marian": ("t5", 512, "[PAD]", "MarianMTModel", "MarianConfig", dict(_SEQ2SEQ, max_position_embeddings=512)),
    # Llama-2-7b-hf: 4096 positions, no pad token, a tokenizer stating no limit; llama-pad: a fine-tune
    # padding with eos
    "llama": ("causal", VERY_LARGE, None, "LlamaForCausalLM", "LlamaConfig",
              dict(_SMALL, num_key_value_heads=2, max_position_embeddings=4096)),
    "llama-pad": ("causal", 4096, "</s>", "LlamaForCausalLM", "LlamaConfig",
                  dict(_SMALL, num_key_value_heads=2, max_position_embeddings=4096)),
    # Qwen2.5-0.5B: 32768 positions, tokenizer 131072, with and without a pad token
    "qwen2": ("bpe", 131072, "<|endoftext|>", "Qwen2ForCausalLM", "Qwen2Config",
              dict(_SMALL, num_key_value_heads=2, max_position_embeddings=32768)),
    "qwen2-no-pad": ("bpe", 131072, None, "Qwen2ForCausalLM", "Qwen2Config",
                     dict(_SMALL, num_key_value_heads=2, max_position_embeddings=32768)),
}


def _build_checkpoint_shaped(family: str, folder: Path) -> Path:
    import transformers as tf

    style, max_length, pad, model_class, config_class, values = CHECKPOINT_SHAPED[family]
    tokenizer = build_tokenizer(style, max_length, pad)
    specials = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id)
    if style == "t5":  # T5 and Marian start decoding from pad; BART keeps its default (</s>, id 2)
        specials["decoder_start_token_id"] = tokenizer.pad_token_id
    config = getattr(tf, config_class)(vocab_size=len(tokenizer), **values, **specials)
    model = getattr(tf, model_class)(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
