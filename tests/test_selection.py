"""Recipes, held-out model selection, early stopping and the adapter-vs-base verdict, on a
tiny local Llama that learns to answer every prompt with "ok"."""

import json

import pytest

from nlpapp.errors import NlpappError
from nlpapp.recipe import TrainingRecipe
from nlpapp.training.config import TrainConfig
from nlpapp.training.selection import Evaluation, held_out_indices, verdict, verdict_line
from nlpapp.training.trainer import train


@pytest.fixture
def ok_data(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"say the number {i}", "response": "ok"}) + "\n"
                            for i in range(40)))
    return path


def ok_config(model, data, output, **kw):
    base = dict(task="generation", model=str(model), data=[str(data)], output=str(output), batch_size=4,
                save_every=0, holdout=0.25, options={"max_new_tokens": 4},
                mixed_precision="no")  # float32 on every machine: the tests follow one run's scores
    return TrainConfig(**{**base, **kw})


def test_the_best_held_out_checkpoint_is_kept_and_measured_against_the_base(runtime, tiny_model, ok_data, tmp_path,
                                                                            capsys):
    out = tmp_path / "ok"
    manifest = train(runtime, ok_config(tiny_model("causal-lm"), ok_data, out, lr=3e-2, epochs=6, patience=2),
                     show_progress=False)
    assert "holding out 10 of 40 examples (--holdout 0.25, seed 0)" in capsys.readouterr().err
    assert manifest["data"]["held_out"] == 10 and manifest["data"]["held_out_from"] == "holdout"
    evals = [r for r in map(json.loads, (out / "train-log.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    # the base before the first step, then every epoch of 30 / 4 = 7 steps, until 2 without improvement
    assert [r["step"] for r in evals] == [0, 7, 14, 21, 28, 35]
    best = manifest["selection"]["best_step"]
    assert manifest["selection"]["stopped_early"] and best < evals[-1]["step"]
    scores = {r["step"]: r["eval_rougeL"] for r in evals}
    assert scores[best] == max(scores.values()) == 100.0 and scores[evals[-1]["step"]] < 100.0
    assert manifest["metrics"]["eval_rougeL"] == 100.0

    # what was written is the best checkpoint, not the last: it answers every held-out prompt
    rows = [json.loads(line) for line in ok_data.read_text().splitlines()]
    held_out = [rows[i] for i in manifest["data"]["held_out_indices"]]
    outputs = runtime.run("generation", [r["prompt"] for r in held_out], adapter=str(out))
    assert [o.response for o in outputs] == ["ok"] * 10  # max_new_tokens 4 comes from the manifest

    v = manifest["verdict"]
    assert (v["score"], v["examples"], v["base"], v["adapter"], v["improved"]) == ("rougeL", 10, 0.0, 100.0, True)
    assert v["ci95"] == [100.0, 100.0] and v["p_value"] == pytest.approx(1 / 1001)
    assert verdict_line(v) == ("adapter vs base on 10 held-out examples: rougeL 0.0 → 100.0 "
                               "(+100.0, 95% [100.0, 100.0], p=0.001)")


def test_an_adapter_that_is_not_better_says_so_and_require_improvement_exits_1(cli, tiny_model, ok_data, tmp_path):
    out = tmp_path / "still"
    code, stdout, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(ok_data),
                            "-o", str(out), "--lr", "1e-7", "--epochs", "1", "--batch-size", "4", "--holdout", "0.25",
                            "--max-new-tokens", "4", "--no-progress", "--require-improvement")
    assert code == 1
    line = next(l for l in stdout.splitlines() if l.startswith("adapter vs base"))
    assert line == ("adapter vs base on 10 held-out examples: rougeL 0.0 → 0.0 (+0.0, 95% [0.0, 0.0], p=1.000); "
                    "the adapter is NOT better than the base")
    assert err.strip().splitlines()[-1] == ("nlpapp: error: --require-improvement: the adapter is not measurably "
                                            "better than the base on the held-out examples: rougeL 0.0 → 0.0 (+0.0, "
                                            "95% [0.0, 0.0], p=1.000)")  # the numbers, also when --json hides stdout's
    assert (out / "nlpapp-adapter.json").is_file()  # written either way, to be looked at
    code, stdout, _ = cli("runs", "show", "latest")
    assert json.loads(stdout)["verdict"]["improved"] is False
    # a script reading --json gets the same exit status
    code, stdout, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(ok_data),
                            "-o", str(out), "--overwrite", "--lr", "1e-7", "--epochs", "1", "--batch-size", "4",
                            "--holdout", "0.25", "--max-new-tokens", "4", "--no-progress", "--require-improvement",
                            "--json")
    assert code == 1 and json.loads(stdout)["verdict"]["improved"] is False


def test_require_improvement_without_held_out_data_is_refused_before_training(cli, tiny_model, ok_data, tmp_path):
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", str(ok_data),
                       "-o", str(tmp_path / "x"), "--holdout", "0", "--require-improvement", "--no-progress")
    assert code == 1 and err.strip() == ("nlpapp: error: --require-improvement needs held-out examples: pass "
                                         "--eval-data or keep --holdout above 0")
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.checkpoints").exists()


def test_language_modelling_is_picked_by_perplexity_only(runtime, tiny_model, tmp_path):
    corpus = tmp_path / "novel.txt"
    corpus.write_text("the weather is nice today and the sun is shining. " * 40)
    with pytest.raises(NlpappError, match="--select-by rougeL: --objective lm is scored by perplexity only"):
        train(runtime, TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(corpus)],
                                   output=str(tmp_path / "lm"), objective="lm", select_by="rougeL"),
              show_progress=False)


def test_a_gain_inside_the_interval_is_not_called_an_improvement():
    result = {"score": "accuracy", "examples": 8, "base": 75.0, "adapter": 87.5, "difference": 12.5,
              "ci95": [-12.5, 37.5], "p_value": 0.31, "higher_is_better": True, "improved": False}
    assert verdict_line(result).endswith("(+12.5, 95% [-12.5, 37.5], p=0.310); not measurably better than the "
                                         "base: the interval includes 0")
    lower = {**result, "score": "perplexity", "base": 30.0, "adapter": 25.0, "difference": -5.0, "ci95": [-6.0, -4.0],
             "higher_is_better": False, "improved": True}
    assert verdict_line(lower) == ("adapter vs base on 8 held-out examples: perplexity 30.0 → 25.0 (-5.0, "
                                   "95% [-6.0, -4.0], p=0.310)")


def test_unset_settings_come_from_the_task_recipe_and_the_manifest_records_them(runtime, tiny_model, ok_data,
                                                                               tmp_path):
    recipe = runtime.task("generation").recipe
    manifest = train(runtime, TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(ok_data)],
                                          output=str(tmp_path / "a"), holdout=0.0, max_steps=2, save_every=0,
                                          batch_size=4), show_progress=False)
    config = manifest["config"]
    window = runtime.models.load(str(tiny_model("causal-lm"))).max_input_tokens  # the recipe's, capped to it
    assert (config["lr"], config["lora_r"], config["max_length"]) == (recipe.lr, recipe.lora_r,
                                                                      min(recipe.max_length, window))
    assert config["batch_size"] == 4 and "batch_size" not in manifest["from_recipe"]
    assert {"lr", "epochs", "lora_r", "max_length"} <= set(manifest["from_recipe"])
    # 40 examples of 4 make 10 steps an epoch: the recipe's epochs already pass its minimum steps
    assert config["epochs"] == recipe.epochs_for(10) == max(recipe.epochs, -(-recipe.min_steps // 10))
    explicit = train(runtime, TrainConfig(task="generation", model=str(tiny_model("causal-lm")), data=[str(ok_data)],
                                          output=str(tmp_path / "b"), holdout=0.0, max_steps=2, save_every=0,
                                          batch_size=4, lr=5e-3, epochs=2), show_progress=False)
    assert (explicit["config"]["lr"], explicit["config"]["epochs"]) == (5e-3, 2)
    assert explicit["config"]["head_lr"] == max(recipe.head_lr, 5e-3)  # a new head never learns slower than LoRA


class Correct:
    """Scores held-out examples that are 1 (right) or 0 (wrong) by their mean, x100."""

    select_by, higher_is_better = "accuracy", True

    def __init__(self, size):
        self.size = size

    def resample(self, evaluation):
        return lambda indices: {"accuracy": 100 * sum(evaluation.examples[i] for i in indices) / len(indices)}


def test_a_verdict_on_too_few_examples_is_never_an_improvement():
    def result(base, best):
        return verdict(Correct(len(base)), Evaluation(0, {"accuracy": 100 * sum(base) / len(base)}, base),
                       Evaluation(5, {"accuracy": 100 * sum(best) / len(best)}, best))

    one = result([0], [1])  # one example: the interval has no width
    assert one["ci95"] == [100.0, 100.0] and one["improved"] is False
    assert verdict_line(one).endswith("; too few held-out examples to tell (fewer than 5)")
    assert result([0] * 8, [1] * 8)["improved"] is True


def test_small_data_is_trained_for_the_recipes_minimum_steps():
    recipe = TrainingRecipe(epochs=3, min_steps=50, max_epochs=20)
    assert recipe.epochs_for(100) == 3  # enough data: the usual passes
    assert recipe.epochs_for(5) == 10  # 5 steps an epoch: 10 passes make 50 steps
    assert recipe.epochs_for(1) == 20  # never more than max_epochs


def test_the_held_out_share_is_seeded_and_sized_for_small_data():
    assert held_out_indices(50, 0.1, 0) == held_out_indices(50, 0.1, 0) != held_out_indices(50, 0.1, 1)
    assert len(held_out_indices(50, 0.1, 0)) == 8  # at least 8 ...
    assert len(held_out_indices(16, 0.1, 0)) == 3  # ... or a fifth of small data
    assert len(held_out_indices(1000, 0.1, 0)) == 100 and len(held_out_indices(100_000, 0.1, 0)) == 500
    assert held_out_indices(4, 0.5, 0) == [] and held_out_indices(50, 0.0, 0) == []


def test_a_new_classifier_head_starts_from_class_means_and_weighs_rare_labels_up(runtime, tiny_model, tmp_path):
    data = tmp_path / "reviews.jsonl"
    rows = [{"text": f"i loved this wonderful book number {i}", "label": "good"} for i in range(18)]
    rows += [{"text": f"awful boring film number {i}", "label": "bad"} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = train(runtime, TrainConfig(task="text-classification", model=str(tiny_model("encoder")),
                                          data=[str(data)], output=str(tmp_path / "c"), holdout=0.0, max_steps=1,
                                          batch_size=4, save_every=0), show_progress=False)
    assert manifest["head_init"].startswith("class means of 24 training examples")
    # scikit-learn's "balanced": n / (k * count) = 24 / (2 * 6) and 24 / (2 * 18)
    assert manifest["class_weights"] == pytest.approx({"bad": 2.0, "good": 24 / 36})


def test_all_linear_targets_every_linear_layer_as_peft_does(runtime, tiny_model, ok_data, tmp_path):
    out = tmp_path / "all"
    train(runtime, ok_config(tiny_model("causal-lm"), ok_data, out, holdout=0.0, max_steps=1, lr=1e-3,
                             target_modules=["all-linear"]), show_progress=False)
    names = json.loads((out / "adapter_config.json").read_text())["target_modules"]  # peft writes full paths
    targets = {name.rsplit(".", 1)[-1] for name in names}
    assert {"q_proj", "v_proj", "gate_proj", "down_proj"} <= targets and "lm_head" not in targets


def test_full_fine_tuning_takes_a_tenth_of_the_recipes_lora_rate():
    recipe = TrainingRecipe(lr=1e-3)
    full = TrainConfig(task="generation", data=["d"], output="o", full=True).with_recipe(recipe)
    assert full.lr == pytest.approx(1e-4)
    assert TrainConfig(task="generation", data=["d"], output="o", full=True, lr=5e-4).with_recipe(recipe).lr == 5e-4
