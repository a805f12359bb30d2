"""Turning training examples into token features, one function per model family.

A task plugin picks the function that fits its model (its ``training_features`` method);
the core pads, batches and computes the loss. Every function returns plain lists, so
features can be hashed, counted and split across processes without touching tensors.
``labels`` of -100 are ignored by the loss."""

from __future__ import annotations

from typing import Any

from ..head import IGNORE  # labels the loss skips
Features = dict[str, Any]


def causal_lm(tokenizer: Any, prompt: str, answer: str, max_length: int, chat: bool = True) -> Features:
    """Instruction tuning: only the answer's tokens (and the end token) count in the loss."""
    if chat and getattr(tokenizer, "chat_template", None):
        prompt_text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                    add_generation_prompt=True)
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    else:
        prompt_ids = tokenizer(prompt)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max_length - len(answer_ids)
    if room < 1:  # keep at least the start of the answer
        answer_ids, room = answer_ids[: max_length // 2], max_length - max_length // 2
    prompt_ids = prompt_ids[-room:]  # an over-long prompt loses its beginning, not its question
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE] * len(prompt_ids) + answer_ids}


def seq2seq(tokenizer: Any, source: str, target: str, max_length: int) -> Features:
    encoded = tokenizer(source, truncation=True, max_length=max_length)
    labels = tokenizer(text_target=target, truncation=True, max_length=max_length)["input_ids"]
    return {"input_ids": encoded["input_ids"], "labels": labels}


def classification(tokenizer: Any, text: str, label_id: int, max_length: int) -> Features:
    encoded = tokenizer(text, truncation=True, max_length=max_length)
    return {"input_ids": encoded["input_ids"], "labels": label_id}


def extractive_qa(tokenizer: Any, question: str, context: str, answer_start: int, answer: str,
                  max_length: int, stride: int) -> list[Features]:
    """One feature per window of the context; a window without the answer points at token 0."""
    room = max_length - len(tokenizer(question, add_special_tokens=False)["input_ids"]) - 3
    stride = max(0, min(stride, room // 2))  # the tokenizer needs the overlap to fit the window
    encoded = tokenizer(question, context, truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    answer_end = answer_start + len(answer)
    features = []
    for w, ids in enumerate(encoded["input_ids"]):
        sequence_ids = encoded.sequence_ids(w)
        offsets = encoded["offset_mapping"][w]
        context_tokens = [i for i, s in enumerate(sequence_ids) if s == 1]
        start = end = 0
        if context_tokens and offsets[context_tokens[0]][0] <= answer_start and \
                offsets[context_tokens[-1]][1] >= answer_end:
            start = next(i for i in context_tokens if offsets[i][1] > answer_start)
            end = next(i for i in reversed(context_tokens) if offsets[i][0] < answer_end)
        feature = {"input_ids": ids, "start_positions": start, "end_positions": end}
        if "token_type_ids" in encoded:
            feature["token_type_ids"] = encoded["token_type_ids"][w]
        features.append(feature)
    return features


def lm_blocks(tokenizer: Any, texts: list[str], block_size: int) -> list[Features]:
    """Raw-text language modelling: concatenate the texts (each ended by the end token)
    and cut them into blocks of ``block_size`` tokens; every token counts."""
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if tokenizer.eos_token_id is not None:
            stream.append(tokenizer.eos_token_id)
    blocks = [stream[i:i + block_size] for i in range(0, len(stream) - 1, block_size)]
    return [{"input_ids": b, "labels": list(b)} for b in blocks if len(b) > 1]

