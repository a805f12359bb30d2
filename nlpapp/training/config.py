"""Training configuration: one dataclass, validated on creation, with one line per field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..configs import check_types, setting
from ..errors import NlpappError
from ..recipe import TrainingRecipe

OBJECTIVES = ("task", "lm")
DISTILL_KINDS = ("auto", "logit", "sequence")  # nlpapp.training.distill.choose_kind decides auto
QUANTIZE = ("4bit", "8bit")  # bitsandbytes' two kinds (nlpapp.training.quantize)
MIXED_PRECISION = ("auto", "bf16", "no")  # accelerate's names (its fp16 needs a loss scaler: not offered)
# the fields a TrainingRecipe fills when they are unset (epochs is scaled to the data)
# --full takes the recipe's (LoRA) learning rate times this: LoRA's usual rates are about ten
# times full fine-tuning's (Biderman et al. 2024, "LoRA Learns Less and Forgets Less");
# one step at the LoRA rate emptied smollm2's output in a test
FULL_LR_FACTOR = 0.1
RECIPE_FIELDS = ("lr", "head_lr", "batch_size", "max_length", "lora_r", "lora_alpha", "select_by", "patience")
# target_modules is filled too, but stays None (the architecture's preset) when the recipe has none
# fields that do not change the training result: --resume accepts other values of them
NOT_FINGERPRINTED = ("output", "save_every", "allow_changed_inputs")


@dataclass
class TrainConfig:
    """``Runtime.train``: what to train on, and how. Each field's help is also its
    ``nlpapp train`` option's help; defaults are the field defaults."""

    task: str = setting(help="The task kind whose examples and prompts are used.", cli=False)
    model: str | None = setting(None, "Base model: a registered name, folder, .gguf file or hub id [default: the "
                                      "task's].", flags=("-m",), metavar="SPEC")
    data: list[str] = setting(help="Training data (.jsonl/.csv/.tsv/.txt, globs, or a registered dataset; "
                                   "repeatable). Extra FILES arguments are added to it.", metavar="FILE",
                              default_factory=list)
    output: str = setting("", "Folder for the adapter (or the model, with --full).", flags=("-o",), metavar="DIR",
                          required=True)
    eval_data: list[str] = setting(help="Held-out data: evaluated before training and after each epoch, it picks "
                                        "the best checkpoint and gives the verdict [default: a seeded --holdout share "
                                        "of --data].", default_factory=list, metavar="FILE")
    holdout: float = setting(0.1, "Without --eval-data, the share of the training examples (lm: the last blocks "
                                  "of text) held out for model selection and the verdict (at least 8, or a fifth of "
                                  "small data; at most 500); 0: none.")
    select_by: str | None = setting(None, "The held-out score that picks the best checkpoint, e.g. rougeL, macro_f1, "
                                          "chrf, f1, perplexity [default: the task's].", metavar="SCORE")
    patience: int | None = setting(None, "Stop after this many held-out evaluations without improvement; 0: never "
                                         "stop early [default: the task's recipe].", metavar="N")
    objective: str = setting("task", "task: the task's examples; lm: continued pre-training on raw text.",
                             choices=OBJECTIVES)
    epochs: int | None = setting(None, "Passes over the training data [default: the task's recipe, lengthened on "
                                       "small data to its minimum steps].", metavar="N")
    max_steps: int | None = setting(None, "Stop after this many optimizer steps.", metavar="N")
    batch_size: int | None = setting(None, "Examples per process per micro-batch [default: the task's recipe].",
                                     metavar="N")
    grad_accum: int = setting(1, "Micro-batches per optimizer step.")
    lr: float | None = setting(None, "Peak learning rate of the LoRA weights (every weight with --full) "
                                     "[default: the task's recipe].", metavar="LR")
    head_lr: float | None = setting(None, "Peak learning rate of a new head's layers (a classifier put on an "
                                          "encoder) [default: the task's recipe].", metavar="LR")
    warmup_ratio: float = setting(0.06, "Share of the steps with a linear learning-rate warm-up.")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm; 0 turns it off.")
    full: bool = setting(False, "Train every weight instead of a LoRA adapter.")
    lora_r: int | None = setting(None, "LoRA rank [default: the task's recipe].", metavar="R")
    lora_alpha: int | None = setting(None, "LoRA scaling (alpha / r multiplies the update) [default: the task's "
                                           "recipe].", metavar="ALPHA")
    lora_dropout: float = setting(0.05, "Dropout on the LoRA input.")
    target_modules: list[str] | None = setting(None, "Modules LoRA adapts, comma-separated, or all-linear "
                                                     "(peft's: every linear layer) [default: the task's recipe, else "
                                                     "the architecture's preset].", metavar="A,B", comma=True)
    max_length: int | None = setting(None, "Most tokens per example (block size for lm) [default: the task's "
                                           "recipe].", metavar="N")
    seed: int = setting(0, "Seed of the data order and of new weights.")
    save_every: int = setting(50, "Optimizer steps between checkpoints; 0: none.")
    gradient_checkpointing: bool = setting(False, "Trade compute for memory.")
    group_by_length: bool = setting(False, "Batch examples of similar length (less padding on ragged data).")
    mixed_precision: str = setting("auto", "Compute in bf16 under torch.autocast, weights and optimizer state "
                                           "staying float32: bf16, no, or auto (bf16 where the GPU or CPU computes "
                                           "it natively: AVX512-BF16/AMX; the manifest records which).",
                                     choices=MIXED_PRECISION)
    allow_changed_inputs: bool = setting(False, "With --resume: continue although the data files' content or the "
                                                "base model's files changed since the checkpoint (refused by "
                                                "default: the result would match neither run).")
    teacher: str | None = setting(None, "Distil from this model (a registered name, folder or hub id): where it "
                                        "shares the student's vocabulary and head and the data has targets, the "
                                        "student learns its token distributions, alpha * T^2 * KL(teacher/T || "
                                        "student/T) + (1 - alpha) * the task's loss (Hinton et al. 2015, "
                                        "\"Distilling the Knowledge in a Neural Network\"); otherwise the teacher "
                                        "writes the targets for the training inputs (teacher-targets.jsonl in "
                                        "--output) and the student trains on them (sequence-level, Kim & Rush "
                                        "2016).", metavar="SPEC")
    distill_kind: str = setting("auto", "With --teacher: logit, sequence, or auto (logit where the vocabularies, "
                                        "heads and targets allow it, else sequence).", choices=DISTILL_KINDS)
    distill_temperature: float = setting(2.0, "With --teacher (logit): the temperature T both distributions are "
                                              "softened by; the KL term is scaled by T^2 so its gradients keep "
                                              "their size as T changes (Hinton et al. 2015).", metavar="T")
    distill_alpha: float = setting(0.5, "With --teacher (logit): the weight of the KL term; 1 - alpha weighs the "
                                        "task's own loss on the data's targets (Hinton et al. 2015).",
                                   metavar="ALPHA")
    quantize: str | None = setting(None, "QLoRA: load the base quantized by bitsandbytes, 4bit (NF4 with bf16 "
                                         "compute, Dettmers et al. 2023) or 8bit, and train LoRA on it; needs a "
                                         "CUDA GPU and pip install bitsandbytes.", choices=QUANTIZE)
    options: dict[str, Any] = setting(help="The task's own options (prompts, languages).", default_factory=dict,
                                      cli=False)
    columns: dict[str, str] = setting(help="Task field -> column in the data.", default_factory=dict, cli=False)
    label_map: dict[str, str] = setting(help="For a base whose classification head is already trained: its labels "
                                             "-> the data's, e.g. NEGATIVE=negative,POSITIVE=positive; the head is "
                                             "kept and fine-tuned under the data's names.", default_factory=dict,
                                        metavar="MODEL=DATA,...", pairs=True)

    def __post_init__(self) -> None:
        check_types(self)
        unset_or = lambda value, ok: value is None or ok(value)  # noqa: E731 - None: the recipe's value
        checks = [
            (self.objective in OBJECTIVES, "objective", f"one of {', '.join(OBJECTIVES)}"),
            (self.mixed_precision in MIXED_PRECISION, "mixed_precision", f"one of {', '.join(MIXED_PRECISION)}"),
            (unset_or(self.epochs, lambda v: v >= 1), "epochs", "at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "at least 1"),
            (unset_or(self.batch_size, lambda v: v >= 1), "batch_size", "at least 1"),
            (self.grad_accum >= 1, "grad_accum", "at least 1"),
            (unset_or(self.lr, lambda v: v > 0), "lr", "positive"),
            (unset_or(self.head_lr, lambda v: v > 0), "head_lr", "positive"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)"),
            (self.max_grad_norm >= 0, "max_grad_norm", ">= 0"),
            (unset_or(self.lora_r, lambda v: v >= 1), "lora_r", "at least 1"),
            (unset_or(self.lora_alpha, lambda v: v >= 1), "lora_alpha", "at least 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout", "in [0, 1)"),
            (unset_or(self.max_length, lambda v: v >= 8), "max_length", "at least 8"),
            (0 <= self.holdout < 1, "holdout", "in [0, 1)"),
            (unset_or(self.patience, lambda v: v >= 0), "patience", ">= 0"),
            (self.save_every >= 0, "save_every", ">= 0"),
            (self.distill_kind in DISTILL_KINDS, "distill_kind", f"one of {', '.join(DISTILL_KINDS)}"),
            (self.distill_temperature > 0, "distill_temperature", "positive"),
            (0 <= self.distill_alpha <= 1, "distill_alpha", "in [0, 1]"),
            (self.quantize in (None, *QUANTIZE), "quantize", f"one of {', '.join(QUANTIZE)}"),
            (self.distill_kind == "auto" or self.teacher is not None, "distill_kind",
             "auto without --teacher (it says how to distil from one)"),
            (not (self.quantize and self.full), "quantize", ("unset with --full (quantized weights cannot be "
                                                             "trained themselves; QLoRA trains LoRA on them)")),
            (bool(self.data), "data", "at least one file"),
            (bool(self.output), "output", "a folder to write the adapter to"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise NlpappError(f"--{name.replace('_', '-')} must be {rule}, got {getattr(self, name)!r}")

    def with_recipe(self, recipe: TrainingRecipe) -> "TrainConfig":
        """This config with its unset fields (``None``) taken from ``recipe``, except
        ``epochs``, which the trainer scales to the data (``TrainingRecipe.epochs_for``). An
        unset ``head_lr`` is the recipe's, but never below the effective ``lr``."""
        filled = {name: getattr(recipe, name) for name in RECIPE_FIELDS if getattr(self, name) is None}
        if self.full and self.lr is None:  # every weight moves: a tenth of LoRA's rate (FULL_LR_FACTOR)
            filled["lr"] = recipe.lr * FULL_LR_FACTOR
        if self.target_modules is None and recipe.target_modules is not None:
            filled["target_modules"] = list(recipe.target_modules)
        if self.head_lr is None:
            filled["head_lr"] = max(recipe.head_lr, filled.get("lr", self.lr))
        return dataclasses.replace(self, **filled)

    def fingerprint(self) -> str:
        """A hash of everything that changes the training result (not where it is written)."""
        return hashlib.sha256(json.dumps(self.resume_options(), sort_keys=True).encode()).hexdigest()[:16]

    def resume_options(self) -> dict[str, Any]:
        """The settings a checkpoint records and ``--resume`` must find unchanged, as JSON values."""
        relevant = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_FINGERPRINTED}
        return json.loads(json.dumps(relevant))

    def changed_options(self, recorded: dict[str, Any]) -> list[str]:
        """Each setting that differs from ``recorded`` (``resume_options`` of an earlier run),
        as ``--name old → new``."""
        now = self.resume_options()
        flags = {f.name: f.metadata.get("cli", True) for f in dataclasses.fields(self)}
        changed = []
        for name in sorted(set(now) | set(recorded)):
            if now.get(name) != recorded.get(name):
                label = f"--{name.replace('_', '-')}" if flags.get(name, True) else f"the {name}"
                changed.append(f"{label} {_shown(recorded.get(name))} → {_shown(now.get(name))}")
        return changed

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return json.dumps(value) if isinstance(value, dict) else str(value)
