"""Each family's usable window (max_input_tokens) on tiny models laid out like real checkpoints."""

import pytest
import torch

from nlpapp.runtime.hf import load_hf_model
from nlpapp.types import LoadOptions

CPU = LoadOptions(device="cpu")
REVIEW = " ".join(["the film was a waste of two hours, boring and awful today."] * 50)  # 600 words, > 512 tokens

WINDOWS = {
    "roberta-classifier": 512,  # 514 positions - padding index 1 - 1
    "roberta-encoder": 512,
    "xlm-roberta": 512,
    "distilbert": 512,
    "bart": 1024,  # the learned-position offset of 2 is inside the table, not taken from it
    "t5": 512,  # relative positions: the tokenizer's limit
    "t5-unbounded": 512,  # no limit stated anywhere: T5's pretraining length
    "marian": 512,
    "llama": 4096,  # no pad token, a tokenizer stating no limit
    "llama-pad": 4096,  # a pad token does not shift rotary positions
    "qwen2": 32768,  # min(32768 positions, tokenizer's 131072)
    "qwen2-no-pad": 32768,
}


@pytest.mark.parametrize("family", WINDOWS)
def test_max_input_tokens_is_the_usable_window(tiny_model, family):
    assert load_hf_model(str(tiny_model(family)), None, CPU).max_input_tokens == WINDOWS[family]


def test_the_roberta_window_is_exactly_what_its_positions_hold(tiny_model):
    """The tiny RoBERTa is laid out like roberta-base: 512 tokens fit, 513 do not."""
    model = load_hf_model(str(tiny_model("roberta-classifier")), None, CPU)
    word = model.tokenizer.convert_tokens_to_ids("film")
    with torch.inference_mode():
        model.hf_model(input_ids=torch.full((1, 512), word))
        with pytest.raises((IndexError, RuntimeError), match="out of bounds"):  # the crash
            model.hf_model(input_ids=torch.full((1, 513), word))


def test_roberta_classifier_takes_a_600_word_review(runtime, tiny_model):
    assert len(REVIEW.split()) == 600
    [output] = runtime.run("text-classification", REVIEW, model=str(tiny_model("roberta-classifier")))
    assert output.label in ("negative", "positive")


def test_roberta_encoder_takes_a_600_word_review(runtime, tiny_model):
    """Encoder mode: zero-shot by embedding similarity to the sentiment preset."""
    [output] = runtime.run("text-classification", REVIEW, model=str(tiny_model("roberta-encoder")))
    assert output.label


def test_a_review_longer_than_the_window_is_cut_with_one_warning(runtime, tiny_model, capsys):
    model = str(tiny_model("roberta-classifier"))
    runtime.run("text-classification", [REVIEW, REVIEW, "short"], model=model)
    runtime.run("text-classification", REVIEW, model=model)
    err = capsys.readouterr().err
    assert err.count("longer than") == 1  # said once per model
    assert "2 input(s) longer than" in err and "window of 512 tokens" in err


@pytest.mark.parametrize("family", ["qwen2", "qwen2-no-pad"])
def test_the_qwen2_shaped_models_tokenize_into_byte_level_pieces_as_qwen2_does(tiny_model, family):
    """transformers 5 loads any qwen2 checkpoint's tokenizer as its byte-level Qwen2Tokenizer;
    a WordPiece vocabulary there would split every word into characters."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model(family))
    assert tokenizer.tokenize("of the company") == ["of", "Ġthe", "Ġcompany"]
    assert (tokenizer.pad_token is None) == (family == "qwen2-no-pad")
