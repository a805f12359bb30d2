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
    assert "text of 1000 tokens truncated to 400 (600 dropped)" in capsys.readouterr().err


def test_seq2seq_keeps_the_summary_budget_out_of_the_input(runtime):
    text = " ".join(f"w{i}" for i in range(1000))
    assert summarize(runtime, "fake-seq2seq", text).truncated_tokens == 1000 - (512 - 48)


def test_tiny_t5_runs(runtime, tiny_model):
    out = summarize(runtime, str(tiny_model("seq2seq-lm")), "the weather is nice today", max_new_tokens=4)
    assert isinstance(out.summary, str)


def test_training_uses_the_inference_prompt(runtime, tiny_model, tmp_path):
    import json

    from nlpapp.training.config import TrainConfig
    from nlpapp.training.trainer import train

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"body": "the weather is nice today " * 40, "title": "nice weather"}) + "\n"
                            for _ in range(4)))
    cfg = TrainConfig(task="summarization", model=str(tiny_model("causal-lm")), data=[str(data)],
                      output=str(tmp_path / "a"), batch_size=2, epochs=1, max_length=64, save_every=0,
                      options={"length": "headline"}, columns={"text": "body", "summary": "title"})
    manifest = train(runtime, cfg, show_progress=False)
    assert manifest["data"]["train_features"] == 4
    from nlpapp_summarization import Summarization, prompt_for
    from nlpapp.task import TrainingContext
    from nlpapp.head import Head

    model = runtime.models.load(str(tiny_model("causal-lm")))
    ctx = TrainingContext(model, Head.CAUSAL_LM, 64, Summarization.Options(length="headline"))
    [feature] = Summarization().training_features(Summarization.Input("the weather " * 80), {"summary": "nice"}, ctx)
    assert len(feature["input_ids"]) <= 64  # the long text was cut to fit, the summary kept
    prompt = model.tokenizer.decode([t for t, l in zip(feature["input_ids"], feature["labels"]) if l == -100])
    assert "headline" in prompt
    assert prompt_for(model, "x", Summarization.Options(length="headline")).startswith("Summarize the following text in one short")
