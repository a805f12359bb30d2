"""Training recipes: the defaults a task declares for fine-tuning on small data.

A ``TrainConfig`` field left unset (``None``) takes the recipe's value; an explicit value
always wins. The trainer records the effective values in the adapter's manifest. The
numbers of the built-in recipes were chosen by measurement on the shared Reuters and
Austen data (docs/training.md, "Recipes")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TrainingRecipe:
    """Training defaults for one task (or one of its heads).

    ``lr`` is the peak learning rate of the LoRA weights (or of every weight with
    ``--full``); ``head_lr`` that of a freshly initialised head's layers (``new_modules``),
    which start from nothing and need larger steps than a low-rank update of trained
    weights. ``epochs`` is the usual number of passes; on small data the run is lengthened
    to at least ``min_steps`` optimizer steps, but to no more than ``max_epochs`` passes.
    Early stopping ends a run after ``patience`` held-out evaluations without improvement
    of ``select_by`` (a score name of the task's metrics, e.g. ``rougeL``; ``None``: the
    first score of the task's first metric). ``target_modules`` are the modules LoRA adapts
    (``None``: the architecture's preset, its attention projections; ``("all-linear",)``:
    every linear layer but the output, peft's shorthand). ``options`` are task options (decoding
    settings, a prompt variant) used when the adapter is evaluated during training, and
    stored in its manifest so that running the adapter reproduces them."""

    lr: float = 2e-4
    head_lr: float = 2e-3
    epochs: int = 3
    min_steps: int = 0
    max_epochs: int = 20
    batch_size: int = 8
    max_length: int = 512
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] | None = None  # None: the architecture's preset; ("all-linear",): peft's
    select_by: str | None = None
    patience: int = 3
    options: Mapping[str, Any] = field(default_factory=dict)

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Passes over data giving ``steps_per_epoch`` optimizer steps each: ``epochs``, or
        enough to reach ``min_steps``, capped at ``max_epochs``."""
        wanted = math.ceil(self.min_steps / max(steps_per_epoch, 1))
        return max(self.epochs, min(wanted, self.max_epochs))


# Continued pre-training (``--objective lm``) on raw text, whatever the task: measured on
# four Austen novels with smollm2 (docs/training.md).
LANGUAGE_MODELLING = TrainingRecipe(lr=5e-4, epochs=1, max_length=256, select_by="perplexity", patience=2)
