"""Tiny randomly initialised real models with every built-in head, built locally in seconds.

Each is a genuine transformers model (Llama, T5, BERT) with a WordPiece tokenizer made
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
CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<s> assistant : {% endif %}")


def _vocab() -> dict[str, int]:
    """Specials, every word of the corpus, and single characters (alone and as ``##``
    continuations) so any text tokenizes. Built by sorting, not trained: WordPiece training
    breaks ties differently from one process to the next, and the models must not."""
    import re

    words = sorted({w for line in CORPUS for w in re.findall(r"\w+|[^\w\s]", line.lower())})
    chars = sorted({c for line in CORPUS for c in line.lower() if not c.isspace()})
    tokens = SPECIALS + [w for w in words if w not in SPECIALS] + [c for c in chars if c not in words] + [
        f"##{c}" for c in chars]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}


def build_tokenizer(style: str):
    """A fast WordPiece tokenizer over a fixed vocabulary; ``style`` is bert (pairs with [CLS]/[SEP]), t5 (ends with
    </s>) or causal (no specials added, a chat template)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(vocab=_vocab(), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    if style == "bert":
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                       model_max_length=128)
    if style == "t5":
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", ids["</s>"])])
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                       eos_token="</s>", model_max_length=128)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   bos_token="<s>", eos_token="</s>", model_max_length=256)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(family: str, folder: Path, seed: int = 0) -> Path:
    """Build and save a tiny model with the head ``family`` (``causal-lm``, ``seq2seq-lm``,
    ``sequence-classification``, ``token-classification``, ``extractive-qa`` or ``encoder``)
    in ``folder``."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
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
