"""The training loop: batching, loss, optimizer, schedule, checkpoints and resume.

Every process sees the whole (small, pre-tokenized) feature list and draws the same
shuffled order from the seed, so under DDP each rank takes its slice of every global batch
without communication. The loss of a global batch is the sum of its target-token losses
divided by their count over the whole global batch, so one process with gradient
accumulation and several processes with DDP compute the same gradient."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import NlpappError
from ..head import ModelHead, pad_features
from ..runtime.heads import accepts_logits_to_keep, causal_loss_sum  # noqa: F401 - re-exported for tests and bench
from .config import TrainConfig
from .distributed import World
from .selection import Evaluation, improved

CHECKPOINT_PREFIX = "step-"


@dataclass
class LoopResult:
    steps: int
    final_loss: float  # mean loss of the last logged step
    eval: dict[str, float] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    base: Evaluation | None = None  # the held-out evaluation before the first step
    best: Evaluation | None = None  # the best one after it: the weights the run ends with
    stopped_early: bool = False  # ``patience`` evaluations passed without improvement


def collate(features: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """Right-pad features into tensors (the default of ``ModelHead.collate``)."""
    return pad_features(features, pad_id)


def loss_totals(model: Any, features: list[dict[str, Any]], head: ModelHead, pad_id: int, device: str,
                batch_size: int = 8, autocast: Any = None) -> tuple[float, int]:
    """Summed loss and target count of ``features`` under ``inference_mode``: divide for
    the mean loss per target (its exponential is the perplexity)."""
    import contextlib

    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = features[start:start + batch_size]
            batch = {k: v.to(device) for k, v in head.collate(chunk, pad_id).items()}
            with autocast() if autocast else contextlib.nullcontext():
                total += float(head.loss_sum(model, batch))
            count += sum(head.target_count(f) for f in chunk)
    return total, count


GROUP_WINDOW_BATCHES = 32  # --group-by-length sorts within this many global batches


class TrainingLoop:
    def __init__(self, config: TrainConfig, model: Any, head: ModelHead, pad_id: int,
                 train: list[dict[str, Any]], evaluation: list[dict[str, Any]], world: World,
                 device: str, checkpoints: Path, log_path: Path,
                 on_step: Callable[[dict[str, Any]], None] = lambda m: None,
                 on_evaluate: Callable[[dict[str, Any]], None] = lambda m: None, scorer: Any = None):
        """``scorer`` (``selection.TaskScorer`` or ``PerplexityScorer``) evaluates held-out
        examples before the first step and after each epoch; the best evaluation's weights
        are restored at the end, and ``config.patience`` evaluations without improvement
        stop the run early."""
        import torch

        self.config, self.model, self.head, self.pad_id = config, model, head, pad_id
        self.train, self.evaluation, self.world, self.device = train, evaluation, world, device
        self.checkpoints, self.log_path = checkpoints, log_path
        self.on_step, self.on_evaluate, self.scorer = on_step, on_evaluate, scorer
        self.base: Evaluation | None = None
        self.best: Evaluation | None = None
        self.best_weights: dict[str, Any] = {}  # a CPU copy of the trainable weights at ``best``
        self.since_best = 0  # evaluations since the best one
        self.global_batch = config.batch_size * config.grad_accum * world.size
        if len(train) < self.global_batch:
            raise NlpappError(f"the training data gives {len(train)} examples, fewer than one global batch of "
                              f"{self.global_batch} (batch size x grad accum x processes); lower --batch-size")
        self.steps_per_epoch = len(train) // self.global_batch  # the last partial batch is dropped
        total = self.steps_per_epoch * config.epochs
        self.total_steps = min(total, config.max_steps) if config.max_steps else total
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        # a new head starts from nothing and takes larger steps than a low-rank update
        new = [p for n, p in model.named_parameters() if p.requires_grad and _in_new_module(n, head)]
        rest = [p for n, p in model.named_parameters() if p.requires_grad and not _in_new_module(n, head)]
        groups = [g for g in ({"params": rest, "lr": config.lr}, {"params": new, "lr": config.head_lr or config.lr})
                  if g["params"]]
        # fused: one kernel over all tensors; on CPU its step is ~4x faster than the default,
        # which shows in full fine-tuning (torch >= 2.4 has it for CPU and CUDA)
        self.optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay, fused=True)
        warmup = int(self.total_steps * config.warmup_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup
            else max(0.0, (self.total_steps - s) / max(1, self.total_steps - warmup)))
        self.ddp_model = model
        if world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp_model = DistributedDataParallel(model, device_ids=[world.local_rank] if device.startswith("cuda")
                                                     else None)
        self.step = 0

    # --- order and batches -----------------------------------------------------------

    def _order(self, epoch: int) -> list[int]:
        import torch

        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        order = torch.randperm(len(self.train), generator=generator).tolist()
        if not self.config.group_by_length:
            return order
        # sort by length inside windows of many batches, cut into batches, shuffle the batches:
        # each batch pads little, and the data order stays random at the batch level
        window = self.global_batch * GROUP_WINDOW_BATCHES
        lengths = [len(f["input_ids"]) for f in self.train]
        grouped = [i for start in range(0, len(order), window)
                   for i in sorted(order[start:start + window], key=lambda i: -lengths[i])]
        batches = [grouped[b * self.global_batch:(b + 1) * self.global_batch] for b in range(self.steps_per_epoch)]
        return [i for b in torch.randperm(len(batches), generator=generator).tolist() for i in batches[b]]

    def _global_indices(self, step: int) -> list[int]:
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = self._order(epoch)
        return order[offset * self.global_batch:(offset + 1) * self.global_batch]

    # --- the loop --------------------------------------------------------------------

    def run(self, resume: bool, progress: Any = None) -> LoopResult:
        import torch

        if resume:
            self._load_checkpoint()
        else:
            torch.manual_seed(self.config.seed)
            random.seed(self.config.seed)
        log = self._read_log() if resume else []
        if self.scorer is not None and self.base is None:  # the model as training starts from it
            losses = self.evaluate() if self.evaluation else {}
            self.base = self.scorer.evaluate(0)
            self._write_json(self.checkpoints / "base-evaluation.json", self.base.as_dict())
            log.append(self._eval_record(self.base, losses))
            self._append_log(log[-1])
            self.on_evaluate(log[-1])
        self.model.train()
        stopped_early = False
        while self.step < self.total_steps:
            record = self.train_step()
            log.append(record)
            self._append_log(record)
            if self.world.is_main and progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                     tok_s=f"{record['tokens_per_s']:.0f}")
            self.on_step(record)
            if self.step % self.steps_per_epoch == 0 or self.step == self.total_steps:
                if self.evaluation or self.scorer is not None:
                    metrics = self._evaluate_now()
                    log.append(metrics)
                    self._append_log(metrics)
                    self.on_evaluate(metrics)
                    stopped_early = bool(self.config.patience) and self.since_best >= self.config.patience
            if self.config.save_every and self.step % self.config.save_every == 0 and self.step < self.total_steps:
                self._save_checkpoint()
            if stopped_early:
                break
        if self.best is not None:  # the run ends with the best held-out weights
            self._restore(self.best_weights)
        last = next((r["loss"] for r in reversed(log) if r["kind"] == "train"), float("nan"))
        evals = [r for r in log if r["kind"] == "eval"]
        chosen = next((r for r in evals if self.best is not None and r["step"] == self.best.step), None)
        return LoopResult(self.step, last, chosen or (evals[-1] if evals else {}), log, self.base, self.best,
                          stopped_early)

    def _evaluate_now(self) -> dict[str, Any]:
        """The held-out loss, and with a scorer its scores; a better score is kept as best."""
        losses = self.evaluate() if self.evaluation else {}
        if self.scorer is None:
            return {"kind": "eval", "step": self.step, **losses}
        result = self.scorer.evaluate(self.step)
        if "eval_loss" in losses:  # breaks ties between equal scores
            result.scores.setdefault("loss", losses["eval_loss"])
        # the main process decides for all: ranks decoding on their own could differ in a
        # token (non-deterministic GPU kernels) and then stop at different steps
        if self._from_main(float(improved(self.scorer, self.best, result))):
            self.best, self.since_best = result, 0
            self.best_weights = {n: p.detach().cpu().clone() for n, p in self.model.named_parameters()
                                 if p.requires_grad}
            self._save_best()
        else:
            self.since_best += 1
        return self._eval_record(result, losses)

    def _eval_record(self, result: Evaluation, losses: dict[str, float]) -> dict[str, Any]:
        return {"kind": "eval", "step": result.step, **{f"eval_{k}": v for k, v in result.scores.items()}, **losses,
                "improved": self.best is not None and self.best.step == result.step}

    def train_step(self) -> dict[str, Any]:
        """One optimizer step on the next global batch; returns its log record."""
        import torch

        started = time.perf_counter()
        indices = self._global_indices(self.step)
        normalizer = sum(self.head.target_count(self.train[i]) for i in indices)
        mine = indices[self.world.rank::self.world.size]
        micro = self.config.batch_size
        step_loss, tokens = 0.0, 0
        for start in range(0, len(mine), micro):
            batch = self.head.collate([self.train[i] for i in mine[start:start + micro]], self.pad_id)
            tokens += int(batch["attention_mask"].sum())
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self._autocast():
                loss = self.head.loss_sum(self.ddp_model, batch)
            (loss * self.world.size / normalizer).backward()
            step_loss += float(loss.detach())
        step_loss = self._all_reduce(step_loss) / normalizer
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        elapsed = time.perf_counter() - started
        return {"kind": "train", "step": self.step, "epoch": (self.step - 1) // self.steps_per_epoch + 1,
                "loss": step_loss, "lr": lr, "tokens_per_s": self._all_reduce(tokens) / elapsed}

    def _append_log(self, record: dict[str, Any]) -> None:
        if self.world.is_main:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def evaluate(self) -> dict[str, float]:
        """Mean loss per target over the evaluation features (perplexity for language models)."""
        self.model.eval()
        mine = self.evaluation[self.world.rank::self.world.size]
        total, count = loss_totals(self.model, mine, self.head, self.pad_id, self.device,
                                   self.config.batch_size, self._autocast)
        self.model.train()
        total, count = self._all_reduce(total), self._all_reduce(count)
        loss = total / max(count, 1)
        metrics = {"eval_loss": loss}
        if self.head.language_model:
            metrics["eval_perplexity"] = math.exp(min(loss, 50))
        return metrics

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _from_main(self, value: float) -> float:
        """The main process's ``value``, on every process."""
        return value if self.world.size == 1 else self._all_reduce(value if self.world.is_main else 0.0)

    def _all_reduce(self, value: float) -> float:
        if self.world.size == 1:
            return value
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item())

    # --- checkpoints -----------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        import torch
        from safetensors.torch import save_file

        from ..runtime.atomic import atomic_folder

        if self.world.is_main:
            target = self.checkpoints / f"{CHECKPOINT_PREFIX}{self.step:07d}"
            with atomic_folder(target) as scratch:
                weights = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters()
                           if p.requires_grad}
                save_file(weights, scratch / "trainable.safetensors")
                torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                            "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()},
                           scratch / "state.pt")
                (scratch / "checkpoint.json").write_text(json.dumps(
                    {"step": self.step, "config": self.config.fingerprint(),
                     "best_step": self.best.step if self.best else None, "since_best": self.since_best}))
            for old in sorted(self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*"))[:-2]:  # keep the last two
                import shutil

                shutil.rmtree(old, ignore_errors=True)
            self._prune_best()
        from .distributed import barrier

        barrier(self.world)

    def latest_checkpoint(self) -> Path | None:
        found = sorted(p for p in self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*") if (p / "checkpoint.json").is_file())
        return found[-1] if found else None

    def _load_checkpoint(self) -> None:
        import torch
        from safetensors.torch import load_file

        latest = self.latest_checkpoint()
        if latest is None:
            raise NlpappError(f"--resume: no checkpoint in {self.checkpoints}; start without --resume")
        meta = json.loads((latest / "checkpoint.json").read_text())
        if meta["config"] != self.config.fingerprint():
            raise NlpappError(f"--resume: the checkpoint in {latest} was made with other training options; "
                              "resume with the same options, or start again with --overwrite")
        self._restore(load_file(latest / "trainable.safetensors"))
        state = torch.load(latest / "state.pt", weights_only=False)  # written by this loop, not user input
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        self.step = meta["step"]
        base = self.checkpoints / "base-evaluation.json"
        if self.scorer is not None:  # never measured again: the weights are no longer the base's
            if not base.is_file():
                raise NlpappError(f"--resume: {base} is missing, so the base cannot be compared any more; start "
                                  "again with --overwrite")
            self.base = Evaluation.from_dict(json.loads(base.read_text()))
        if self.scorer is not None and meta.get("best_step") is not None:  # the best as of the checkpoint
            folder = self._best_folder(meta["best_step"])
            self.best = Evaluation.from_dict(json.loads((folder / "evaluation.json").read_text()))
            self.best_weights = load_file(folder / "trainable.safetensors")
            self.since_best = meta["since_best"]

    def _best_folder(self, step: int) -> Path:
        return self.checkpoints / f"best-{CHECKPOINT_PREFIX}{step:07d}"

    def _save_best(self) -> None:
        """The best weights and evaluation on disk, so a resumed run knows them."""
        from safetensors.torch import save_file

        from ..runtime.atomic import atomic_folder

        if self.world.is_main and self.config.save_every:  # without checkpoints there is no resume to serve
            with atomic_folder(self._best_folder(self.best.step), replace=True) as scratch:
                save_file({n: w.contiguous() for n, w in self.best_weights.items()}, scratch / "trainable.safetensors")
                (scratch / "evaluation.json").write_text(json.dumps(self.best.as_dict()))
            self._prune_best()

    def _prune_best(self) -> None:
        """Keep the best folder of now and the one the latest checkpoint names."""
        import shutil

        latest = self.latest_checkpoint()
        keep = {self._best_folder(self.best.step).name} if self.best else set()
        if latest is not None:
            named = json.loads((latest / "checkpoint.json").read_text()).get("best_step")
            if named is not None:
                keep.add(self._best_folder(named).name)
        for folder in self.checkpoints.glob(f"best-{CHECKPOINT_PREFIX}*"):
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)

    def _restore(self, weights: dict[str, Any]) -> None:
        import torch

        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)

    def _write_json(self, path: Path, data: Any) -> None:
        if self.world.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))

    def _read_log(self) -> list[dict[str, Any]]:
        """The log up to the checkpoint; later lines (from the interrupted run) are dropped."""
        if not self.log_path.is_file():
            return []
        kept = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        kept = [r for r in kept if r["step"] <= self.step]
        if self.world.is_main:
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return kept


def _in_new_module(name: str, head: ModelHead) -> bool:
    """Whether parameter ``name`` belongs to one of the head's new layers (peft keeps them as
    ``...classifier.modules_to_save.default.weight``; a full model as ``classifier.weight``)."""
    parts = name.split(".")
    return any(module in parts for module in head.new_modules)
