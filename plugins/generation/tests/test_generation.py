from nlpapp.api import run


def records(*texts):
    return [(f"t{i}", {"prompt": t}) for i, t in enumerate(texts)]


def test_prompts_in_order_with_outputs(runtime):
    results = list(run(runtime, "generation", records("a b", "c d e"), model="fake-causal"))
    assert [(i.prompt, o.response) for i, o in results] == [("a b", "b a"), ("c d e", "e d c")]


def test_single_prompt_streams_and_batches_do_not(runtime):
    pieces = []
    list(run(runtime, "generation", records("x y z"), model="fake-causal", stream=pieces.append))
    assert "".join(pieces) == "z y x"
    pieces.clear()
    list(run(runtime, "generation", records("a b", "c d"), model="fake-causal", stream=pieces.append))
    assert pieces == []


def test_seq2seq_models_are_accepted(runtime):
    [(_, output)] = run(runtime, "generation", records("a b"), model="fake-seq2seq")
    assert output.response == "B A"


def test_help_names_the_options(cli):
    code, out, _ = cli("run", "generation", "--help")
    for flag in ("--max-new-tokens", "--temperature", "--top-p", "--seed", "--raw", "--repetition-penalty"):
        assert flag in out
