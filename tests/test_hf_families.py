"""The Hugging Face backend on tiny real models of every family, built locally."""

import pytest
import torch

from nlpapp.head import Head
from nlpapp.runtime.heads import BUILTIN_HEADS
from nlpapp.runtime.hf import best_span, detect_head, load_hf_model
from nlpapp.types import GenerationParams, LoadOptions

CPU = LoadOptions(device="cpu", dtype="float32")


@pytest.mark.parametrize("family", [h.name for h in BUILTIN_HEADS])
def test_family_is_detected_from_the_config(tiny_model, family):
    model = load_hf_model(str(tiny_model(family)), None, CPU)
    assert model.head == family
    assert (model.device, model.dtype) == ("cpu", "float32")


@pytest.mark.parametrize("family", ["causal-lm", "seq2seq-lm"])
def test_batched_generation_equals_one_by_one(tiny_model, family):
    """Padding (left for causal, right for seq2seq) must not change greedy outputs."""
    model = load_hf_model(str(tiny_model(family)), None, CPU)
    prompts = ["the weather is nice", "who founded the company and where is it based today", "oil"]
    params = GenerationParams(max_new_tokens=6)
    batched = model.generate(prompts, params)
    single = [model.generate([p], params)[0] for p in prompts]
    assert batched == single
    assert all(isinstance(t, str) for t in batched)


def test_compiled_decoding_gives_the_eager_output(tiny_model):
    from torch._dynamo.utils import counters

    model = load_hf_model(str(tiny_model("causal-lm")), None, CPU)
    prompts = ["the weather is nice", "who founded the company and where is it based today"]
    eager = model.generate(prompts, GenerationParams(max_new_tokens=8))
    compiled_frames = counters["frames"]["ok"]
    assert model.generate(prompts, GenerationParams(max_new_tokens=8, compile=True)) == eager
    assert counters["frames"]["ok"] > compiled_frames  # dynamo compiled the decoding step


def test_no_repeat_ngram_bans_generated_repeats_but_not_copies_of_the_prompt():
    """The prompt [5, 6] may be copied; once the output holds 5, 6 and then 5 again, 6 is banned."""
    from nlpapp.runtime.hf import GeneratedNoRepeatNGram

    banned = GeneratedNoRepeatNGram(2, prompt_positions=2)
    copying = banned(torch.tensor([[5, 6, 5]]), torch.zeros(1, 10))  # prompt 5 6, generated 5
    assert torch.isfinite(copying).all()
    repeating = banned(torch.tensor([[5, 6, 5, 6, 5]]), torch.zeros(1, 10))  # generated 5 6 5
    assert repeating[0, 6] == float("-inf") and torch.isfinite(repeating[0, :6]).all()


@pytest.mark.parametrize("family", ["causal-lm", "seq2seq-lm"])
def test_no_repeat_ngram_size_stops_a_looping_output(tiny_model, family):
    model = load_hf_model(str(tiny_model(family)), None, CPU)
    prompts = ["the weather is nice", "oil"]

    def repeats(ids):
        grams = list(zip(ids, ids[1:]))
        return len(grams) != len(set(grams))

    def generated_ids(params):  # the ids generate() decodes (decoded text may not re-tokenize alike)
        encoded, skip = model._prepare(prompts, params, chat=True)
        with torch.inference_mode():
            output = model.hf_model.generate(**encoded, **model._generate_kwargs(params, skip))
        return [[i for i in row if i != model.tokenizer.pad_token_id] for row in output[:, skip:].tolist()]

    assert any(repeats(ids) for ids in generated_ids(GenerationParams(max_new_tokens=24)))  # a random model loops
    assert not any(repeats(ids) for ids in generated_ids(GenerationParams(max_new_tokens=24, no_repeat_ngram_size=2)))


def test_chat_template_is_applied_for_causal_models(tiny_model):
    model = load_hf_model(str(tiny_model("causal-lm")), None, CPU)
    assert model.has_chat_template
    encoded, skip = model._prepare(["hello"], GenerationParams(max_new_tokens=2), chat=True)
    text = model.tokenizer.decode(encoded["input_ids"][0])
    assert text.endswith("assistant [UNK]")  # the template's generation prompt (":" is not in the tiny vocab)
    raw, _ = model._prepare(["hello"], GenerationParams(max_new_tokens=2), chat=False)
    assert "assistant" not in model.tokenizer.decode(raw["input_ids"][0])


def test_streaming_pieces_add_up_to_the_output(tiny_model):
    model = load_hf_model(str(tiny_model("causal-lm")), None, CPU)
    pieces = []
    [text] = model.generate(["the weather"], GenerationParams(max_new_tokens=8), stream=pieces.append)
    assert "".join(pieces).strip() == text.strip()


def test_generate_scored_gives_probabilities(tiny_model):
    model = load_hf_model(str(tiny_model("causal-lm")), None, CPU)
    [(text, score)] = model.generate_scored(["the weather"], GenerationParams(max_new_tokens=4))
    assert 0 < score <= 1
    assert text == model.generate(["the weather"], GenerationParams(max_new_tokens=4))[0]


def test_prompt_longer_than_window_is_a_user_error(tiny_model):
    from nlpapp.errors import InputError

    model = load_hf_model(str(tiny_model("causal-lm")), None, CPU)
    with pytest.raises(InputError, match="exceeds the model's window of 256 tokens"):
        model.generate(["word " * 300], GenerationParams(max_new_tokens=4))


def test_classifier_labels_come_from_the_config(tiny_model):
    model = load_hf_model(str(tiny_model("sequence-classification")), None, CPU)
    assert model.labels == ("negative", "positive")
    [scores] = model.classify(["i loved it"])
    assert set(scores) == {"negative", "positive"}
    assert sum(scores.values()) == pytest.approx(1.0)


def test_embeddings_are_normalised_and_batch_independent(tiny_model):
    model = load_hf_model(str(tiny_model("encoder")), None, CPU)
    texts = ["short", "a much longer sentence about oil prices and shares"]
    batched = torch.tensor(model.embed(texts))
    single = torch.tensor([model.embed([t])[0] for t in texts])
    assert torch.allclose(batched.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(batched, single, atol=1e-5)


def test_extractive_qa_offsets_point_into_the_context(tiny_model):
    model = load_hf_model(str(tiny_model("extractive-qa")), None, CPU)
    context = "Acme was founded in 1990 by Jane Roe in Ohio."
    [span] = model.extract_answers(["who founded acme?"], [context], max_answer_tokens=5)
    assert context[span.start:span.end] == span.text
    assert 0 < span.score <= 1


def test_extractive_qa_windows_cover_a_long_context(tiny_model):
    """A context longer than the 128-token window is split with stride; the chosen span
    must come from the right window, with offsets into the full context."""
    model = load_hf_model(str(tiny_model("extractive-qa")), None, CPU)
    context = " ".join(["the weather is nice today."] * 60) + " acme was founded by jane roe."
    questions = ["who founded acme?"]
    [span] = model.extract_answers(questions, [context], max_answer_tokens=4, stride=32)
    assert context[span.start:span.end] == span.text
    windows = model.tokenizer(questions, [context], truncation="only_second", max_length=128, stride=32,
                              return_overflowing_tokens=True)["input_ids"]
    assert len(windows) > 3  # the context really was windowed


def test_best_span_respects_order_length_and_context():
    start = torch.log_softmax(torch.tensor([9.0, 0.0, 3.0, 0.0, 6.0]), -1)
    end = torch.log_softmax(torch.tensor([9.0, 5.0, 0.0, 4.0, 0.0]), -1)
    allowed = torch.tensor([False, True, True, True, True])
    # (0, 0) scores highest but token 0 is not context; (4, 1) would beat (2, 3) but ends
    # before it starts; so (2, 3) wins, and with one-token answers (4, 4) does
    logp, s, e = best_span(start, end, allowed, max_tokens=3)
    assert (s, e) == (2, 3)
    assert logp == pytest.approx(float(start[2] + end[3]))
    assert best_span(start, end, allowed, max_tokens=1)[1:] == (4, 4)
    assert best_span(start, end, torch.zeros(5, dtype=torch.bool), 3) is None


def test_detect_head_from_architectures():
    from transformers import BertConfig

    from transformers import T5Config

    assert detect_head(BertConfig(architectures=["BertForQuestionAnswering"]), BUILTIN_HEADS) == Head.EXTRACTIVE_QA
    assert detect_head(BertConfig(), BUILTIN_HEADS) == Head.ENCODER
    assert detect_head(T5Config(architectures=["T5ForConditionalGeneration"]), BUILTIN_HEADS) == Head.SEQ2SEQ_LM
    # a head only a plugin registers is detected once it is registered, not before
    assert detect_head(BertConfig(architectures=["BertForTokenClassification"]), BUILTIN_HEADS) == Head.ENCODER


def test_a_huge_input_is_cut_before_tokenizing_with_the_same_result(tiny_model, monkeypatch):
    from nlpapp.runtime import hf

    model = load_hf_model(str(tiny_model("sequence-classification")), "sequence-classification", LoadOptions())
    huge = "the film was good and " * 100_000  # 2.2 MB
    seen = []
    tokenize = model.tokenizer.__call__
    monkeypatch.setattr(type(model.tokenizer), "__call__",
                        lambda self, texts, *a, **k: seen.append(max(map(len, texts))) or tokenize(texts, *a, **k))
    scores = model.classify([huge])
    assert seen == [model.max_input_tokens * hf.CHARS_PER_TOKEN]
    monkeypatch.setattr(hf, "CHARS_PER_TOKEN", 10**9)  # no cut: tokenize it all
    assert model.classify([huge]) == scores
