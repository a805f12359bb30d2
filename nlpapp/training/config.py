"""Training configuration: one dataclass, validated on creation, with one line per field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..configs import check_types, setting
from ..errors import NlpappError

OBJECTIVES = ("task", "lm")


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
    eval_data: list[str] = setting(help="Held-out data, evaluated after each epoch.", default_factory=list,
                                   metavar="FILE")
    objective: str = setting("task", "task: the task's examples; lm: continued pre-training on raw text.",
                             choices=OBJECTIVES)
    epochs: int = setting(3, "Passes over the training data.")
    max_steps: int | None = setting(None, "Stop after this many optimizer steps.", metavar="N")
    batch_size: int = setting(8, "Examples per process per micro-batch.")
    grad_accum: int = setting(1, "Micro-batches per optimizer step.")
    lr: float = setting(2e-4, "Peak learning rate.")
    warmup_ratio: float = setting(0.06, "Share of the steps with a linear learning-rate warm-up.")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm; 0 turns it off.")
    full: bool = setting(False, "Train every weight instead of a LoRA adapter.")
    lora_r: int = setting(8, "LoRA rank.")
    lora_alpha: int = setting(16, "LoRA scaling (alpha / r multiplies the update).")
    lora_dropout: float = setting(0.05, "Dropout on the LoRA input.")
    target_modules: list[str] | None = setting(None, "Modules LoRA adapts, comma-separated [default: the "
                                                     "architecture's preset].", metavar="A,B", comma=True)
    max_length: int = setting(512, "Most tokens per example (block size for lm).")
    seed: int = setting(0, "Seed of the data order and of new weights.")
    save_every: int = setting(50, "Optimizer steps between checkpoints; 0: none.")
    gradient_checkpointing: bool = setting(False, "Trade compute for memory.")
    group_by_length: bool = setting(False, "Batch examples of similar length (less padding on ragged data).")
    options: dict[str, Any] = setting(help="The task's own options (prompts, languages).", default_factory=dict,
                                      cli=False)
    columns: dict[str, str] = setting(help="Task field -> column in the data.", default_factory=dict, cli=False)

    def __post_init__(self) -> None:
        check_types(self)
        checks = [
            (self.objective in OBJECTIVES, "objective", f"one of {', '.join(OBJECTIVES)}"),
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (self.grad_accum >= 1, "grad_accum", "at least 1"),
            (self.lr > 0, "lr", "positive"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1)"),
            (self.max_grad_norm >= 0, "max_grad_norm", ">= 0"),
            (self.lora_r >= 1, "lora_r", "at least 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout", "in [0, 1)"),
            (self.max_length >= 8, "max_length", "at least 8"),
            (self.save_every >= 0, "save_every", ">= 0"),
            (bool(self.data), "data", "at least one file"),
            (bool(self.output), "output", "a folder to write the adapter to"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise NlpappError(f"--{name.replace('_', '-')} must be {rule}, got {getattr(self, name)!r}")

    def fingerprint(self) -> str:
        """A hash of everything that changes the training result (not where it is written)."""
        relevant = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("output", "save_every")}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
