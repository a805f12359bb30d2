"""Training configuration: one dataclass, validated on creation, with one line per field."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import NlpappError

OBJECTIVES = ("task", "lm")


@dataclass
class TrainConfig:
    task: str  # the task kind whose examples and prompts are used
    model: str  # base model spec: alias, folder, .gguf or hub id
    data: list[str]  # training files (globs already expanded)
    output: str  # where the adapter (or, with full, the model) is written
    eval_data: list[str] = field(default_factory=list)  # held-out files, evaluated each epoch
    objective: str = "task"  # task: the task's examples; lm: next-token prediction on raw text
    epochs: int = 3
    max_steps: int | None = None  # stop after this many optimizer steps (all epochs if None)
    batch_size: int = 8  # examples per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 2e-4
    warmup_ratio: float = 0.06  # share of the steps with a linear learning-rate warm-up
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0  # gradients are clipped to this norm; 0 turns clipping off
    full: bool = False  # train every weight instead of a LoRA adapter
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | None = None  # None: the preset registered for the architecture
    max_length: int = 512  # most tokens per feature (block size for the lm objective)
    seed: int = 0
    save_every: int = 50  # optimizer steps between checkpoints; 0 saves none
    gradient_checkpointing: bool = False
    group_by_length: bool = False  # batches of similar length: less padding on ragged data
    options: dict[str, Any] = field(default_factory=dict)  # the task's own options (prompts, languages)
    columns: dict[str, str] = field(default_factory=dict)  # task field -> column in the data

    def __post_init__(self) -> None:
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
