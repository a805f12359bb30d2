"""nlpapp optimize: quantized and pruned copies of tiny real models reload, run and score,
and what each changed is the change asked for (issue 16, parts 1, 2 and 4)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchao")


def _logits(model, texts=("the film was good", "oil prices fell")):
    encoded = model.encode(list(texts))
    return model.forward(encoded).logits


def test_int8_quantized_model_reloads_in_nlpapp_and_transformers_and_stays_close(runtime, tiny_model, tmp_path):
    source = str(tiny_model("causal-lm"))
    result = runtime.quantize(source, "int8", tmp_path / "int8", measure=False)

    config = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "torchao"
    record = json.loads((tmp_path / "int8" / "nlpapp-optimization.json").read_text())
    assert record["method"] == "int8" and record["source"] == source and result.method == "quantize int8"

    original = runtime.models.load(source)
    quantized = runtime.models.load(str(tmp_path / "int8"))
    weight = quantized.hf_model.model.layers[0].self_attn.q_proj.weight
    assert type(weight).__module__.startswith("torchao")  # the int8 tensor, not floats again
    before, after = _logits(original), _logits(quantized)
    assert not torch.equal(before, after)  # quantized: the numbers moved ...
    assert (after - before).abs().max() < 0.05 * before.abs().max()  # ... by little (per-row int8)
    from nlpapp.types import GenerationParams

    assert quantized.generate(["hello"], GenerationParams(max_new_tokens=3)) is not None

    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "int8")
    assert type(plain.model.layers[0].self_attn.q_proj.weight) is type(weight)


def test_a_method_that_does_not_run_on_the_cpu_is_refused_before_anything_is_written(runtime, tiny_model, tmp_path):
    from nlpapp.errors import NlpappError, UnknownNameError

    with pytest.raises(NlpappError, match=r"int4 runs only on cuda .* on cpu use int8 or int8-dynamic"):
        runtime.quantize(str(tiny_model("causal-lm")), "int4", tmp_path / "int4", measure=False)
    assert not (tmp_path / "int4").exists() and not list(tmp_path.glob(".int4*"))
    with pytest.raises(UnknownNameError, match="did you mean 'int8'"):
        runtime.quantize(str(tiny_model("causal-lm")), "int9", tmp_path / "x", measure=False)


def test_the_output_may_not_replace_the_source_or_an_existing_folder(runtime, tiny_model, tmp_path):
    from nlpapp.errors import NlpappError

    source = tiny_model("encoder")
    with pytest.raises(NlpappError, match="would replace the model"):
        runtime.prune(str(source), 0.5, source, measure=False)
    (tmp_path / "taken").mkdir()
    with pytest.raises(NlpappError, match="already exists; pass --overwrite"):
        runtime.prune(str(source), 0.5, tmp_path / "taken", measure=False)
    with pytest.raises(NlpappError, match="between 0 and 1"):
        runtime.prune(str(source), 1.5, tmp_path / "y", measure=False)


def test_unstructured_pruning_zeroes_that_share_of_every_block_layer_and_nothing_else(runtime, tiny_model, tmp_path):
    source = str(tiny_model("encoder"))
    result = runtime.prune(source, 0.5, tmp_path / "pruned", measure=False)
    pruned = runtime.models.load(str(tmp_path / "pruned")).hf_model
    original = runtime.models.load(source).hf_model
    linears = {n: m for n, m in pruned.named_modules() if isinstance(m, torch.nn.Linear)}
    block = {n: m for n, m in linears.items() if ".layer." in n}
    assert block and result.details["layers"] == len(block)
    for name, layer in block.items():
        share = float((layer.weight == 0).float().mean())
        assert share == pytest.approx(0.5, abs=1 / layer.weight.numel()), name
        kept = layer.weight != 0  # the weights kept are the original's, the largest ones
        source_weight = dict(original.named_modules())[name].weight
        assert torch.equal(layer.weight[kept], source_weight[kept])
        assert source_weight[kept].abs().min() >= source_weight[~kept].abs().max()
    assert torch.equal(pruned.embeddings.word_embeddings.weight, original.embeddings.word_embeddings.weight)


def test_head_pruning_removes_the_weakest_heads_and_equals_silencing_them(runtime, tiny_model, tmp_path):
    from nlpapp.optimization import prune

    source = str(tiny_model("encoder"))  # BERT, 4 heads of 8 dimensions in each of 2 layers
    original = runtime.models.load(source)
    result = runtime.prune(source, 0.5, tmp_path / "heads", structured="heads", measure=False)
    assert result.details["heads_removed"] == 4  # 2 of 4 in each layer

    pruned = runtime.models.load(str(tmp_path / "heads"))  # rebuilt from config.json's record
    removed = json.loads((tmp_path / "heads" / "config.json").read_text())["nlpapp_pruned_heads"]
    for index, attention, dense in prune.attention_modules(pruned.hf_model):
        assert attention.query.out_features == 16 and dense.in_features == 16
        scores = prune.head_scores(*prune.attention_modules(original.hf_model)[index][1:])
        weakest = sorted(range(4), key=scores.__getitem__)[:2]
        assert sorted(removed[str(index)]) == sorted(weakest)

    # a removed head adds nothing: silencing its value projection in the original gives the same output
    silenced = runtime.models.load_uncached(source, None)
    for index, attention, _ in prune.attention_modules(silenced.hf_model):
        with torch.no_grad():
            for head in removed[str(index)]:
                attention.value.weight[head * 8:(head + 1) * 8] = 0
                attention.value.bias[head * 8:(head + 1) * 8] = 0
    texts = ["the film was good", "oil prices fell sharply today"]
    expected = silenced.forward(silenced.encode(texts)).last_hidden_state
    actual = pruned.forward(pruned.encode(texts)).last_hidden_state
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    assert pruned.embed(texts) and len(pruned.embed(texts)[0]) == 32


def test_head_pruning_refuses_a_model_that_is_not_a_bert_style_encoder(runtime, tiny_model, tmp_path):
    from nlpapp.errors import NlpappError

    with pytest.raises(NlpappError, match="BERT-style encoders"):
        runtime.prune(str(tiny_model("causal-lm")), 0.5, tmp_path / "x", structured="heads", measure=False)


def test_the_tradeoff_measures_both_models_and_scores_them_on_held_out_data(runtime, tiny_model, tmp_path):
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in
                            [("good film", "positive"), ("bad film", "negative"), ("great acting", "positive"),
                             ("dull plot", "negative"), ("lovely", "positive"), ("awful", "negative")]))
    source = str(tiny_model("sequence-classification"))
    result = runtime.quantize(source, "int8-dynamic", tmp_path / "q", task="sentiment", data=str(data))

    tradeoff = result.tradeoff
    linear_bytes = sum(m.weight.numel() * 4 for m in runtime.models.load(source).hf_model.modules()
                       if isinstance(m, torch.nn.Linear))
    saved = tradeoff.original.size_bytes - tradeoff.optimized.size_bytes
    # a byte for four of each float32 linear weight, less the scales (dear on 32-wide rows);
    # the embeddings stay float32
    assert 0.4 * linear_bytes < saved < 0.75 * linear_bytes
    for side in (tradeoff.original, tradeoff.optimized):
        assert side.unit == "texts/s" and side.throughput > 0 and side.peak_memory_bytes > 50 * 2**20
        accuracy = side.scores["accuracy"]
        assert 0 <= accuracy["value"] <= 100 and accuracy["ci95"][0] <= accuracy["value"] <= accuracy["ci95"][1]
    record = json.loads((tmp_path / "q" / "nlpapp-optimization.json").read_text())
    assert record["tradeoff"]["ratios"]["size"] == tradeoff.ratios()["size"]
    from nlpapp import runs

    latest = json.loads((runs.runs_dir() / runs.resolve("latest") / runs.RECORD).read_text())
    assert latest["kind"] == "optimize" and latest["tradeoff"]["optimized"]["model"] == str(tmp_path / "q")


def test_cli_quantize_prints_json_and_a_user_mistake_is_one_line(cli, tiny_model, tmp_path):
    code, out, err = cli("optimize", "quantize", str(tiny_model("causal-lm")), "--method", "int8",
                         "--output", str(tmp_path / "q"), "--no-measure", "--json")
    assert code == 0, err
    assert json.loads(out)["method"] == "quantize int8"
    code, out, err = cli("optimize", "quantize", str(tiny_model("causal-lm")), "--method", "nf4",
                         "--output", str(tmp_path / "n"), "--no-measure")
    assert code != 0 and "Traceback" not in err
    assert "nf4 runs only on cuda" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli("optimize", "prune", str(tiny_model("encoder")), "--sparsity", "0.5",
                         "--output", str(tmp_path / "p"), "--task", "sentiment")
    assert code != 0 and "--task and --eval-data together" in err
    code, out, _ = cli("optimize", "methods", "--json")
    assert {m["name"] for m in json.loads(out)} >= {"int8", "int8-dynamic", "int4", "nf4", "llm-int8"}


def test_a_head_pruned_encoder_recovers_with_a_full_fine_tune_and_stays_pruned(runtime, tiny_model, tmp_path):
    """The recovery fine-tune docs/optimization.md gives: the pruned body loads under a new
    classifier head (its weights taken over, not drawn anew) and the trained folder keeps its shapes."""
    from nlpapp.optimization import prune
    from nlpapp.training.config import TrainConfig

    runtime.prune(str(tiny_model("encoder")), 0.5, tmp_path / "heads", structured="heads", measure=False)
    pruned = runtime.models.load(str(tmp_path / "heads")).hf_model
    classifier = runtime.models.load_uncached(str(tmp_path / "heads"), "sequence-classification",
                                              ("negative", "positive")).hf_model
    torch.testing.assert_close(classifier.bert.encoder.layer[0].attention.self.query.weight,
                               pruned.encoder.layer[0].attention.self.query.weight)
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "good film,positive\nbad film,negative\n" * 8)
    runtime.train(TrainConfig(task="sentiment", model=str(tmp_path / "heads"), data=[str(data)],
                              output=str(tmp_path / "full"), full=True, epochs=1, save_every=0, holdout=0.0))
    kept = json.loads((tmp_path / "full" / "config.json").read_text())["nlpapp_pruned_heads"]
    assert kept == json.loads((tmp_path / "heads" / "config.json").read_text())["nlpapp_pruned_heads"]
    [output] = runtime.run("sentiment", ["good film"], adapter=str(tmp_path / "full"))
    assert output.label in ("negative", "positive")
    tuned = runtime.models.load(str(tmp_path / "full")).hf_model
    assert all(attention.query.out_features == 16 for _, attention, _ in prune.attention_modules(tuned))


def test_a_quantized_model_is_not_quantized_again_or_pruned(runtime, tiny_model, tmp_path):
    from nlpapp.errors import NlpappError

    runtime.quantize(str(tiny_model("causal-lm")), "int8", tmp_path / "q", measure=False)
    with pytest.raises(NlpappError, match=r"already quantized \(torchao Int8WeightOnlyConfig\); quantize the original"):
        runtime.quantize(str(tmp_path / "q"), "int8-dynamic", tmp_path / "qq", measure=False)
    with pytest.raises(NlpappError, match="already quantized .*prune the floating-point model"):
        runtime.prune(str(tmp_path / "q"), 0.5, tmp_path / "qp", measure=False)
    assert not (tmp_path / "qq").exists() and not (tmp_path / "qp").exists()


def test_mistakes_found_by_a_new_user_are_refused_before_anything_is_written(runtime, tiny_model, tmp_path):
    from nlpapp.errors import InputError, NlpappError

    source = str(tiny_model("encoder"))
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "important.txt").write_text("mine")
    with pytest.raises(NlpappError, match="is not a model folder .* will not delete it"):
        runtime.prune(source, 0.5, keep, overwrite=True, measure=False)
    assert (keep / "important.txt").read_text() == "mine"
    with pytest.raises(NlpappError, match="removes no head of the 4 in a layer"):
        runtime.prune(source, 0.1, tmp_path / "none", structured="heads", measure=False)
    with pytest.raises(NlpappError, match="which --no-measure skips"):
        runtime.prune(source, 0.5, tmp_path / "x", task="sentiment", data=str(tmp_path / "dev.jsonl"), measure=False)
    with pytest.raises(InputError, match="missing.jsonl"):
        runtime.prune(source, 0.5, tmp_path / "y", task="sentiment", data=str(tmp_path / "missing.jsonl"))
    assert not any(p.name in ("none", "x", "y") for p in tmp_path.iterdir())
