"""Does a new classifier head start from what the encoder knows? Reuters topics, acq vs crude.

    python bench/classifier_init.py [--data ../shared/data] [--parts zero,step0,sweep,train]

The data are ``topic_rows`` of bench/training_evidence.py: Reuters articles with exactly one
of the topics acq/crude, text = title + ". " + body (train: 46, 36 acq / 10 crude; dev: 8,
7 acq / 1 crude). Eight dev articles say little, so every number is also given on a
second held-out set: the 54 articles pooled and split into two stratified folds, each
scored by what was made from the other (28 + 26 articles, 54 predictions).

1. zero: zero-shot minilm with the ``reuters-topics`` label descriptions (no training data;
   scored on dev and on all 54 articles).
2. step0: the trainer's model (minilm + a new sequence-classification head, loaded as
   ``train`` loads it) after ``head_init.initialise_classifier`` and no training step,
   predicted through the task's normal path; per temperature, from the label descriptions
   and from the class means of the training data. Also the untouched random head.
   sweep: the same layer's held-out log loss per temperature, from one pass (it is linear).
3. train: ``trainer.train`` (LoRA, 5 epochs, batch 8, max 256 tokens, no held-out share, so
   the last step is scored) with the trainer's ``initialise_classifier`` and
   ``balance_classes`` calls switched on or off, and balanced sampling in place of weights,
   at several learning rates; scored through ``run`` with the adapter. On 2 shared CPU
   cores a setting took 1-5 minutes per held-out set (steps of 2-7 s).

Prints tables and writes bench/results/classifier-init-<date>.json."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from training_evidence import topic_rows, write_jsonl

from nlpapp.api import Runtime, run
from nlpapp.training import head_init, trainer
from nlpapp.training.config import TrainConfig
from nlpapp.types import LoadOptions

LABELS = ("acq=a company acquires or merges with another company; takeover bid for shares,"
          "crude=crude oil prices; oil production; OPEC and petroleum")  # as in the reuters-topics task file
TASK = "text-classification"
MAX_LENGTH = 256  # tokens per article in training (the text-classification recipe's); 512 doubled a run's time


def folds(rows: list[dict]) -> list[tuple[list[dict], list[dict]]]:
    """Two stratified folds: within each label, articles alternate between the folds."""
    parts: list[list[dict]] = [[], []]
    for label in sorted({r["label"] for r in rows}):
        for i, r in enumerate(r for r in rows if r["label"] == label):
            parts[i % 2].append(r)
    return [(parts[1], parts[0]), (parts[0], parts[1])]  # (train, test)


def scores_of(predicted: list[dict[str, float]], rows: list[dict]) -> dict:
    right = sum(max(s, key=s.get) == r["label"] for s, r in zip(predicted, rows))
    loss = -sum(math.log(max(s[r["label"]], 1e-12)) for s, r in zip(predicted, rows)) / len(rows)
    crude = sum(max(s, key=s.get) == "crude" for s in predicted)
    return {"accuracy": right / len(rows), "right": right, "n": len(rows), "log_loss": loss, "predicted_crude": crude,
            "true_crude": sum(r["label"] == "crude" for r in rows)}


def macro_f1(s: dict) -> float:
    """Macro F1 over acq and crude, from the counts (two labels: the confusion follows from
    right, predicted crude, true crude)."""
    n, right, pred, true = s["n"], s["right"], s["predicted_crude"], s["true_crude"]
    tp_crude = (right - n + true + pred) // 2
    tp_acq = right - tp_crude
    f1 = lambda tp, p, t: 2 * tp / (p + t) if p + t else 0.0
    return (f1(tp_crude, pred, true) + f1(tp_acq, n - pred, n - true)) / 2


def merge(parts: list[dict]) -> dict:
    n, right = sum(p["n"] for p in parts), sum(p["right"] for p in parts)
    carried = {k: [p[k] for p in parts] for k in ("first_loss", "final_loss", "steps", "seconds") if k in parts[0]}
    return {**{k: v[0] for k, v in carried.items()}, "folds": parts,"accuracy": right / n, "right": right, "n": n,
            "log_loss": sum(p["log_loss"] * p["n"] for p in parts) / n,
            "predicted_crude": sum(p["predicted_crude"] for p in parts),
            "true_crude": sum(p["true_crude"] for p in parts)}


# --- 1. zero-shot ----------------------------------------------------------------------------

def zero_shot(runtime: Runtime, rows: list[dict]) -> dict:
    outs = [o for _, o in run(runtime, TASK, [(str(i), {"text": r["text"]}) for i, r in enumerate(rows)],
                              model="minilm", options={"labels": LABELS})]
    return scores_of([o.scores for o in outs], rows)


# --- 2. step 0 ---------------------------------------------------------------------------------

def load_for_training(runtime: Runtime, labels: tuple[str, ...], seed: int = 0):
    """The model as ``trainer.train`` loads it: the seed, then a copy of its own with a new head."""
    import torch

    torch.manual_seed(seed)
    return runtime.models.load_uncached("minilm", "sequence-classification", labels,
                                        LoadOptions(device="cpu", dtype="float32"))


def features_of(runtime: Runtime, model, rows: list[dict], label_ids: dict[str, int], max_length: int = MAX_LENGTH):
    from nlpapp.task import TrainingContext

    task = runtime.task(TASK)
    ctx = TrainingContext(model, "sequence-classification", max_length, task.parse_options({"labels": LABELS}),
                          label_ids)
    return [f for r in rows for f in task.training_features(task.Input(r["text"]), {"label": r["label"]}, ctx)]


def predict(runtime: Runtime, model, rows: list[dict]) -> list[dict[str, float]]:
    task = runtime.task(TASK)
    options = task.parse_options({"labels": LABELS})
    return [o.scores for o in task.predict(model, [task.Input(r["text"]) for r in rows], options)]


def step0(runtime: Runtime, train_rows: list[dict], dev_rows: list[dict], temperatures: list[float]) -> list[dict]:
    task = runtime.task(TASK)
    head = runtime.registries.heads.get("sequence-classification")
    label_ids = {"acq": 0, "crude": 1}
    pooled = train_rows + dev_rows
    options = task.parse_options({"labels": LABELS})
    no_descriptions = task.parse_options({})  # the sentiment preset: no description of acq/crude
    results = []
    model = load_for_training(runtime, tuple(label_ids))
    results.append({"init": "none (random head, seed 0)", "temperature": None,
                    "dev": scores_of(predict(runtime, model, dev_rows), dev_rows),
                    "cv54": scores_of(predict(runtime, model, pooled), pooled)})
    train_features = features_of(runtime, model, train_rows, label_ids)
    fold_features = [(features_of(runtime, model, tr, label_ids), te) for tr, te in folds(pooled)]
    for t in temperatures:
        # descriptions: no training data used, so every article is held out
        done = head_init.initialise_classifier(model, head, task, options, train_features, label_ids, MAX_LENGTH, t)
        results.append({"init": done, "temperature": t, "dev": scores_of(predict(runtime, model, dev_rows), dev_rows),
                        "cv54": scores_of(predict(runtime, model, pooled), pooled)})
        done = head_init.initialise_classifier(model, head, task, no_descriptions, train_features, label_ids, MAX_LENGTH, t)
        dev = scores_of(predict(runtime, model, dev_rows), dev_rows)
        parts = []
        for feats, test in fold_features:
            head_init.initialise_classifier(model, head, task, no_descriptions, feats, label_ids, MAX_LENGTH, t)
            parts.append(scores_of(predict(runtime, model, test), test))
        results.append({"init": done, "temperature": t, "dev": dev, "cv54": merge(parts)})
    return results


def temperature_sweep(runtime: Runtime, train_rows: list[dict], dev_rows: list[dict],
                      temperatures: list[float]) -> list[dict]:
    """Held-out log loss and accuracy of the imprinted layer per temperature, from one pass:
    the layer is linear, so its logits at temperature T are T x its logits at 1. Articles
    are read at up to 512 tokens, as the task predicts them."""
    import torch

    task = runtime.task(TASK)
    head = runtime.registries.heads.get("sequence-classification")
    label_ids = {"acq": 0, "crude": 1}
    pooled = train_rows + dev_rows
    model = load_for_training(runtime, tuple(label_ids))
    module = model.trainable_module()
    [layer] = head_init.classifier_layers(module, head, 2)
    pad = model.tokenizer.pad_token_id
    inputs = head_init.layer_inputs(module, layer, head, features_of(runtime, model, pooled, label_ids, 512), pad)
    truth = torch.tensor([label_ids[r["label"]] for r in pooled])

    def unit_weight(options, rows) -> torch.Tensor:
        feats = features_of(runtime, model, rows, label_ids)
        head_init.initialise_classifier(model, head, task, options, feats, label_ids, MAX_LENGTH, 1.0)
        return layer.weight.detach().clone()

    described = unit_weight(task.parse_options({"labels": LABELS}), train_rows)
    index = {id(r): i for i, r in enumerate(pooled)}
    fold_weights = [(unit_weight(task.parse_options({}), tr), [index[id(r)] for r in te]) for tr, te in folds(pooled)]
    results = []
    for t in temperatures:
        row = {"temperature": t}
        for name, logits in (("descriptions", t * inputs @ described.T),
                             ("class_means_cv", torch.cat([t * inputs[i] @ w.T for w, i in fold_weights]))):
            order = list(range(len(pooled))) if name == "descriptions" else [i for _, idx in fold_weights for i in idx]
            y = truth[order]
            row[name] = {"log_loss": float(torch.nn.functional.cross_entropy(logits, y)),
                         "accuracy": float((logits.argmax(1) == y).float().mean())}
        results.append(row)
        print(f"T={t:<5g} descriptions: log loss {row['descriptions']['log_loss']:.3f} accuracy "
              f"{row['descriptions']['accuracy']:.3f}   class means (2 folds): log loss "
              f"{row['class_means_cv']['log_loss']:.3f} accuracy {row['class_means_cv']['accuracy']:.3f}")
    return results


# --- 3. training -------------------------------------------------------------------------------

@contextlib.contextmanager
def trainer_with(init: bool, weights: bool, temperature: float, oversample: bool = False):
    """``trainer.train`` with its calls of ``initialise_classifier`` (at ``temperature``) and
    ``balance_classes`` switched on or off, and optionally balanced sampling (each smaller
    label's features repeated up to the largest label's count, given to the loop)."""
    seen: dict = {}
    original_init, original_balance, original_loop = (trainer.initialise_classifier, trainer.balance_classes,
                                                      trainer.TrainingLoop)

    def init_head(*args, **kwargs):
        seen["init"] = original_init(*args, **{**kwargs, "temperature": temperature}) if init else None
        return seen["init"]

    def balance(*args, **kwargs):
        seen["weights"] = original_balance(*args, **kwargs) if weights else None
        return seen["weights"]

    def loop(config, model, head, pad_id, train_features, *args, **kwargs):
        if oversample:
            by_label: dict[int, list] = {}
            for f in train_features:
                by_label.setdefault(f["labels"], []).append(f)
            most = max(len(g) for g in by_label.values())
            train_features = [g[i % len(g)] for g in by_label.values() for i in range(most)]
            seen["oversampled"] = len(train_features)
        return original_loop(config, model, head, pad_id, train_features, *args, **kwargs)

    trainer.initialise_classifier, trainer.balance_classes, trainer.TrainingLoop = init_head, balance, loop
    try:
        yield seen
    finally:
        trainer.initialise_classifier, trainer.balance_classes, trainer.TrainingLoop = (original_init,
                                                                                        original_balance, original_loop)


def train_once(runtime: Runtime, work: Path, name: str, train_rows: list[dict], test_rows: list[dict],
               setting: dict, epochs: int) -> dict:
    with trainer_with(setting["init"], setting["weights"], setting.get("temperature", 20.0),
                      setting.get("oversample", False)) as seen:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        extra = {"holdout": 0.0} if "holdout" in fields else {}  # no held-out selection: the last step is scored
        if setting.get("oversample"):  # as many optimizer steps as without it (--epochs over the original data)
            extra["max_steps"] = len(train_rows) // 8 * epochs
        if "head_lr" in fields:
            extra["head_lr"] = setting.get("head_lr", setting["lr"])
        config = TrainConfig(task=TASK, model="minilm", data=[write_jsonl(work / f"{name}.jsonl", train_rows)],
                             output=str(work / name), epochs=epochs, batch_size=8, lr=setting["lr"],
                             max_length=MAX_LENGTH, save_every=0, options={"labels": LABELS},
                             seed=setting.get("seed", 0), **extra)
        started = time.perf_counter()
        manifest = trainer.train(runtime, config, show_progress=False, overwrite=True)
        seconds = time.perf_counter() - started
    log = [json.loads(line) for line in (work / name / "train-log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    outs = [o for _, o in run(runtime, TASK, [(str(i), {"text": r["text"]}) for i, r in enumerate(test_rows)],
                              adapter=config.output)]
    return {**scores_of([o.scores for o in outs], test_rows), "steps": manifest["metrics"]["steps"],
            "first_loss": losses[0], "final_loss": losses[-1], "seconds": seconds, "init": seen.get("init"),
            "weights": seen.get("weights"), "oversampled_features": seen.get("oversampled")}


def training(runtime: Runtime, train_rows: list[dict], dev_rows: list[dict], settings: list[dict], epochs: int,
             held_out: str) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n, setting in enumerate(settings):  # a folder per run: a runtime keeps each adapter it loaded
            row = {**setting, "epochs": epochs}
            if held_out in ("dev", "both"):
                row["dev"] = train_once(runtime, work, f"s{n}-dev", train_rows, dev_rows, setting, epochs)
            if held_out in ("cv", "both"):
                row["cv54"] = merge([train_once(runtime, work, f"s{n}-fold{k}", tr, te, setting, epochs)
                                     for k, (tr, te) in enumerate(folds(train_rows + dev_rows))])
            results.append(row)
            print(line(row), flush=True)
    return results


def line(row: dict) -> str:
    def cell(s: dict | None) -> str:
        if not s:
            return "-"
        return (f"{s['accuracy']:.3f} ({s['right']}/{s['n']}, crude {s['predicted_crude']}/{s['true_crude']}, "
                f"macro F1 {macro_f1(s):.3f})")

    name = (f"init={'yes' if row.get('init') else 'no'} weights={'yes' if row.get('weights') else 'no'}"
            f"{' oversampled' if row.get('oversample') else ''} "
            f"lr={row['lr']:g}/{row.get('head_lr', row['lr']):g} T={row.get('temperature', 20.0):g}" if "lr" in row else
            f"{row['init']}")
    first = row.get("dev") or row.get("cv54")
    loss = f" loss {first['first_loss']:.3f}->{first['final_loss']:.3f} ({first['steps']} steps, " \
           f"{first['seconds']:.0f} s)" if "first_loss" in first else ""
    loss += f" cv54 log loss {row['cv54']['log_loss']:.3f}" if row.get("cv54") else ""
    return f"{name:<70} dev {cell(row.get('dev'))}  cv54 {cell(row.get('cv54'))}{loss}"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--parts", default="zero,step0,train")
    parser.add_argument("--temperatures", default="5,10,20,40,80")
    parser.add_argument("--sweep", default="5,10,15,20,25,30,40,50,60,80")
    parser.add_argument("--lrs", default="2e-4,5e-4,2e-3")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--held-out", choices=("dev", "cv", "both"), default="both",
                        help="trained settings: scored on dev (trained on train), on the two folds, or both")
    parser.add_argument("--combos", default="00,01,10,11",
                        help="per setting: init, class weights[, balanced sampling]: 1 on, 0 off (e.g. 101)")
    parser.add_argument("--train-temperature", type=float, default=head_init.DEFAULT_TEMPERATURE)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data) / "reuters"
    train_rows, dev_rows = topic_rows(data / "train.jsonl"), topic_rows(data / "dev.jsonl")
    runtime = Runtime.create()
    parts = args.parts.split(",")
    report: dict = {"date": datetime.date.today().isoformat(), "torch_threads": torch.get_num_threads(),
                    "n_train": len(train_rows), "n_dev": len(dev_rows), "labels_option": LABELS}
    if "zero" in parts:
        report["zero_shot"] = {"dev": zero_shot(runtime, dev_rows), "cv54": zero_shot(runtime, train_rows + dev_rows)}
        print(line({"init": "zero-shot (encoder, label descriptions)", **report["zero_shot"]}))
    if "step0" in parts:
        report["step0"] = step0(runtime, train_rows, dev_rows, [float(t) for t in args.temperatures.split(",")])
        for row in report["step0"]:
            print(line(row))
    if "sweep" in parts:
        report["temperature_sweep"] = temperature_sweep(runtime, train_rows, dev_rows,
                                                        [float(t) for t in args.sweep.split(",")])
    if "train" in parts:
        settings = []
        for seed in args.seeds.split(","):
            for lrs in args.lrs.split(","):  # LR, or LR/HEAD_LR
                lr, _, head_lr = lrs.partition("/")
                for combo in args.combos.split(","):
                    settings.append({"init": combo[0] == "1", "weights": combo[1] == "1",
                                     "oversample": combo[2:3] == "1", "lr": float(lr),
                                     "head_lr": float(head_lr or lr), "temperature": args.train_temperature,
                                     "seed": int(seed)})
        report["train"] = training(runtime, train_rows, dev_rows, settings, args.epochs, args.held_out)
    out = Path(args.output) if args.output else HERE / "results" / f"classifier-init-{report['date']}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
