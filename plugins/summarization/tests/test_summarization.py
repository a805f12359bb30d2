from nlpapp.api import run


def summarize(runtime, model, text, **options):
    [(_, output)] = run(runtime, "summarization", [("s", {"text": text})], model=model, options=options)
    return output


def test_short_input_is_not_truncated(runtime):
    out = summarize(runtime, "fake-seq2seq", "one two three")
    assert out.truncated_tokens == 0
    assert out.summary == "THREE TWO ONE"  # the fake seq2seq reverses and upper-cases


def test_long_input_is_truncated_with_a_warning_saying_by_how_much(runtime, capsys):
    text = " ".join(f"w{i}" for i in range(1000))
    out = summarize(runtime, "fake-causal", text, max_new_tokens=64)
    # fake window 512 tokens - 48 for the prompt - 64 for the summary = 400 kept
    assert out.truncated_tokens == 600
    assert "input of 1000 tokens truncated to 400 (600 dropped)" in capsys.readouterr().err


def test_seq2seq_keeps_the_summary_budget_out_of_the_input(runtime):
    text = " ".join(f"w{i}" for i in range(1000))
    assert summarize(runtime, "fake-seq2seq", text).truncated_tokens == 1000 - (512 - 48)


def test_tiny_t5_runs(runtime, tiny_model):
    out = summarize(runtime, str(tiny_model("seq2seq-lm")), "the weather is nice today", max_new_tokens=4)
    assert isinstance(out.summary, str)
