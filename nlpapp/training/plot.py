"""The loss curve saved with every run: people look at curves, they do not read logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def loss_curve(log: list[dict[str, Any]], path: Path, title: str, select_by: str | None = None) -> None:
    """Training and held-out loss per step; with ``select_by``, that held-out score on a
    second axis, the best evaluation marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in log if r["kind"] == "train"]
    evals = [r for r in log if r["kind"] == "eval"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss", linewidth=1)
    losses = [r for r in evals if "eval_loss" in r]
    if losses:
        ax.plot([r["step"] for r in losses], [r["eval_loss"] for r in losses], "o-", label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean per target)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    scored = [r for r in evals if f"eval_{select_by}" in r]
    if scored and select_by != "loss":
        score = ax.twinx()
        score.plot([r["step"] for r in scored], [r[f"eval_{select_by}"] for r in scored], "s--", color="tab:green",
                   label=f"held-out {select_by}")
        best = [r for r in scored if r.get("improved")][-1:]  # the last improvement is the best
        score.plot([r["step"] for r in best], [r[f"eval_{select_by}"] for r in best], "*", color="tab:red",
                   markersize=14, label="best (kept)")
        score.set_ylabel(select_by)
        more_handles, more_labels = score.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
