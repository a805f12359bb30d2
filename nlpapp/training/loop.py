"""The training loop: batching, loss, optimizer, schedule, checkpoints and resume.

Every process sees the whole (small, pre-tokenized) feature list and draws the same
shuffled order from the seed, so under DDP each rank takes its slice of every global batch
without communication. The loss of a global batch is the sum of its target-token losses
divided by their count over the whole global batch, so one process with gradient
accumulation and several processes with DDP compute the same gradient.

What a run never does:

- write non-finite weights. A step whose loss or gradient norm is not finite (NaN or
  infinite) stops the run before the optimizer applies it (``TrainingError``, naming the
  step and the last good checkpoint); the weights are checked again before each
  checkpoint, each held-out selection and at the end, so no checkpoint, best model or
  output holds a NaN. There is no skipping of bad steps: a run that diverged once mostly
  diverges again, and silently dropping batches would change what was trained on.
- lose its work to SIGINT or SIGTERM. The first signal lets the current step finish,
  writes a checkpoint and raises ``TrainingInterrupted`` (exit 130 or 143); a second
  signal acts at once. ``--resume`` then continues as if never stopped.
- resume from a checkpoint made otherwise: other options (each change is named), other
  data content or other base weights at the same paths (refused unless
  ``allow_changed_inputs``), or a ``state.pt`` that is more than tensors and plain values
  (loaded with ``weights_only``: a pickle payload never runs).
- end in a traceback when memory runs out: ``TrainingError`` names the batch size and
  length and what to lower."""

from __future__ import annotations

import json
import math
import pickle
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import NlpappError, TrainingError, TrainingInterrupted
from ..runtime.device import is_out_of_memory
from ..head import ModelHead, pad_features
from ..runtime.heads import accepts_logits_to_keep, causal_loss_sum  # noqa: F401 - re-exported for tests and bench
from .config import TrainConfig
from .distributed import World
from .selection import Evaluation, improved

CHECKPOINT_PREFIX = "step-"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
                 on_evaluate: Callable[[dict[str, Any]], None] = lambda m: None, scorer: Any = None,
                 inputs: dict[str, str] | None = None, train_loss: Callable[[Any, Any], Any] | None = None):
        """``scorer`` (``selection.TaskScorer`` or ``PerplexityScorer``) evaluates held-out
        examples before the first step and after each epoch; the best evaluation's weights
        are restored at the end, and ``config.patience`` evaluations without improvement
        stop the run early. ``inputs`` (a label -> fingerprint of each data file and base
        model file) go into each checkpoint; ``--resume`` refuses a checkpoint whose inputs
        differ, unless ``config.allow_changed_inputs``. ``train_loss(model, batch)`` replaces
        ``head.loss_sum`` in the training steps only (``distill.LogitDistillation``): a summed
        loss over the same targets, so the normalisation is unchanged; held-out losses stay
        the head's."""
        import torch

        self.config, self.model, self.head, self.pad_id = config, model, head, pad_id
        self.inputs = dict(inputs or {})
        self.train, self.evaluation, self.world, self.device = train, evaluation, world, device
        self.checkpoints, self.log_path = checkpoints, log_path
        self.on_step, self.on_evaluate, self.scorer = on_step, on_evaluate, scorer
        self.train_loss = train_loss or head.loss_sum
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
        self.saved_step: int | None = None  # the step of the latest checkpoint this process wrote or loaded

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
        """Train to the end (or an early stop) and return the result; ``resume`` continues
        from the latest checkpoint. Raises ``NlpappError`` when a checkpoint cannot be
        resumed, ``TrainingError`` on a non-finite loss, gradient or weights, on running out
        of memory and on a checkpoint that cannot be written, and ``TrainingInterrupted``
        after SIGINT or SIGTERM (once the current step is done and checkpointed)."""
        with _StopSignals() as signals:
            try:
                return self._run(resume, progress, signals)
            except OSError as exc:  # writing the log or an evaluation: a full disk, most often
                raise TrainingError(f"training stopped at step {self.step}: {exc.filename or self.checkpoints}: "
                                    f"{exc.strerror or exc}; nothing was written to the output") from None
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                raise TrainingError(self._out_of_memory_message()) from None

    def _run(self, resume: bool, progress: Any, signals: "_StopSignals") -> LoopResult:
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
        # a resumed run that had already stopped early (then was interrupted) stays stopped
        stopped_early = bool(self.config.patience) and self.scorer is not None and \
            self.since_best >= self.config.patience
        while self.step < self.total_steps and not stopped_early:
            self._stop_if_signalled(signals)
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
        self._stop_if_signalled(signals)  # during the last step: its checkpoint lets --resume write the output
        if self.best is not None:  # the run ends with the best held-out weights
            self._restore(self.best_weights)
        self._check_finite_weights("at the end of training")
        last = next((r["loss"] for r in reversed(log) if r["kind"] == "train"), float("nan"))
        evals = [r for r in log if r["kind"] == "eval"]
        chosen = next((r for r in evals if self.best is not None and r["step"] == self.best.step), None)
        return LoopResult(self.step, last, chosen or (evals[-1] if evals else {}), log, self.base, self.best,
                          stopped_early)

    def _evaluate_now(self) -> dict[str, Any]:
        """The held-out loss, and with a scorer its scores; a better score is kept as best."""
        self._check_finite_weights("before the held-out evaluation")  # never selected as best
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
                loss = self.train_loss(self.ddp_model, batch)
            (loss * self.world.size / normalizer).backward()
            step_loss += float(loss.detach())
        step_loss = self._all_reduce(step_loss) / normalizer
        # the norm is measured unclipped too (an infinite bound scales by exactly 1): a
        # non-finite gradient is caught before the optimizer writes it into the weights;
        # DDP has all-reduced the gradients, so every process sees the same norm and stops
        norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, self.config.max_grad_norm or math.inf))
        if not (math.isfinite(step_loss) and math.isfinite(norm)):
            raise self._diverged(f"the loss is {step_loss:.4g} and the gradient norm {norm:.4g}", self.step + 1)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        elapsed = time.perf_counter() - started
        return {"kind": "train", "step": self.step, "epoch": (self.step - 1) // self.steps_per_epoch + 1,
                "loss": step_loss, "lr": lr, "tokens_per_s": self._all_reduce(tokens) / elapsed}

    def _diverged(self, what: str, step: int) -> TrainingError:
        latest = self.latest_checkpoint()
        kept = (f"the last good checkpoint is {latest} (step {int(latest.name[len(CHECKPOINT_PREFIX):])})"
                if latest is not None else "no checkpoint was written")
        return TrainingError(f"training diverged at step {step}: {what}; nothing was written to the output and "
                             f"{kept}; lower --lr (it is {self.config.lr:g}) and start again"
                             + (" with --overwrite" if latest is not None else ""))

    def _check_finite_weights(self, when: str) -> None:
        """Raise ``TrainingError`` if a trainable weight holds NaN or infinity."""
        import torch

        if not self.trainable:
            return
        # one device sync for all tensors; the names only once something is wrong
        if bool(torch.stack([torch.isfinite(p).all() for p in self.trainable]).all()):
            return
        name = next(n for n, p in self.model.named_parameters() if p.requires_grad and not torch.isfinite(p).all())
        raise self._diverged(f"the weight {name} is not finite {when}", self.step)

    def _out_of_memory_message(self) -> str:
        config = self.config
        advice = [f"lower --batch-size and raise --grad-accum to keep the global batch of {self.global_batch}",
                  "lower --max-length"]
        if not config.gradient_checkpointing:
            advice.append("pass --gradient-checkpointing")
        return (f"out of memory on {self.device} at step {self.step + 1} with --batch-size {config.batch_size} and "
                f"--max-length {config.max_length}: {', '.join(advice[:-1])}, or {advice[-1]}")

    def _stop_if_signalled(self, signals: "_StopSignals") -> None:
        """After SIGINT or SIGTERM (on any process): checkpoint this step and raise
        ``TrainingInterrupted``."""
        received = signals.received or signal.SIGTERM  # a signal that reached another process only
        if not self._all_reduce(1.0 if signals.received else 0.0):
            return
        if self.best is not None and not self._best_folder(self.best.step).exists():
            self._save_best(always=True)  # without --save-every it was kept in memory only
        if self.saved_step != self.step:  # not on disk yet (decided alike on every process)
            self._save_checkpoint()
        name = signal.Signals(received).name
        raise TrainingInterrupted(f"{name} received: stopped after step {self.step} of {self.total_steps} and saved a "
                                  f"checkpoint in {self.checkpoints}; run the same command with --resume to continue",
                                  int(received))

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

        if effective_mixed_precision(self.config.mixed_precision, self.device) == "bf16":
            return torch.autocast("cuda" if self.device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
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

        self._check_finite_weights("at the checkpoint")  # a checkpoint is always one to go back to
        self.saved_step = self.step
        if self.world.is_main:
            target = self.checkpoints / f"{CHECKPOINT_PREFIX}{self.step:07d}"
            try:
                with atomic_folder(target) as scratch:
                    weights = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters()
                               if p.requires_grad}
                    save_file(weights, scratch / "trainable.safetensors")
                    # tensors and plain values only, so that resuming loads it with weights_only
                    torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                                **_rng_state()}, scratch / "state.pt")
                    (scratch / "checkpoint.json").write_text(json.dumps(
                        {"step": self.step, "config": self.config.fingerprint(),
                         "options": self.config.resume_options(), "inputs": self.inputs,
                         "best_step": self.best.step if self.best else None, "since_best": self.since_best}))
            except OSError as exc:
                raise TrainingError(f"cannot write the checkpoint of step {self.step} in {self.checkpoints}: "
                                    f"{exc.strerror or exc}; training stopped, nothing was written to the output"
                                    ) from None
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
        try:
            meta = json.loads((latest / "checkpoint.json").read_text())
        except (OSError, ValueError) as exc:
            raise NlpappError(f"--resume: {latest / 'checkpoint.json'} cannot be read ({exc}); start again with "
                              "--overwrite") from None
        if meta["config"] != self.config.fingerprint():
            changed = self.config.changed_options(meta["options"]) if "options" in meta else []
            raise NlpappError(f"--resume: the checkpoint in {latest} was made with other training options"
                              + (f" ({'; '.join(changed)})" if changed else "")
                              + "; resume with the same options, or start again with --overwrite")
        changed = [label for label in sorted(set(meta.get("inputs", self.inputs)) | set(self.inputs))
                   if meta.get("inputs", self.inputs).get(label) != self.inputs.get(label)]
        if changed and not self.config.allow_changed_inputs:
            raise NlpappError(f"--resume: since the checkpoint in {latest} was made, "
                              f"{'; '.join(label + ' changed' for label in changed)}; "
                              "resume with the same inputs, start again with --overwrite, or pass "
                              "--allow-changed-inputs to continue anyway")
        # state.pt is a pickle: weights_only refuses anything but tensors and plain values,
        # so a planted checkpoint cannot run code
        try:
            state = torch.load(latest / "state.pt", weights_only=True)
        except pickle.UnpicklingError:
            raise NlpappError(f"--resume: {latest / 'state.pt'} holds more than tensors and plain values (a pickle "
                              "that could run code) and was not loaded; nlpapp never writes one like it: start "
                              "again with --overwrite") from None
        except (OSError, RuntimeError, EOFError) as exc:
            raise NlpappError(f"--resume: {latest / 'state.pt'} cannot be read ({exc}); start again with "
                              "--overwrite") from None
        try:
            self._restore(load_file(latest / "trainable.safetensors"))
        except Exception as exc:  # a truncated or foreign file (safetensors has its own error type)
            raise NlpappError(f"--resume: {latest / 'trainable.safetensors'} cannot be read ({exc}); start again "
                              "with --overwrite") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state)
        self.step = self.saved_step = meta["step"]
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

    def _save_best(self, always: bool = False) -> None:
        """The best weights and evaluation on disk, so a resumed run knows them."""
        from safetensors.torch import save_file

        from ..runtime.atomic import atomic_folder

        # without checkpoints there is no resume to serve, until a signal asks for one
        if self.world.is_main and (self.config.save_every or always):
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


def effective_mixed_precision(mode: str, device: str) -> str:
    """``bf16`` or ``no`` for ``--mixed-precision`` ``mode`` on ``device``: ``auto`` is bf16
    where the hardware computes it natively, a CUDA GPU with bf16 or a CPU whose oneDNN has
    bf16 kernels (AVX512-BF16, AMX). Measured on such a CPU (bench/training_speed.py, smollm2
    LoRA at batch 8 x 512): 0.55x the step time of float32 and 0.73x the peak memory, the loss
    after 3 steps within 1%; a CPU without them would emulate bf16, slower than float32."""
    from ..runtime.device import native_bf16

    if mode != "auto":
        return mode
    return "bf16" if native_bf16(device) else "no"


class _StopSignals:
    """While training: SIGINT and SIGTERM are noted (``received``) so that the loop stops
    after the current step; the handlers before are put back at once, so a second signal
    acts as it would have (SIGINT: KeyboardInterrupt; SIGTERM: the process ends)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored on purpose (nohup): left so
                    self.previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum: int, frame: Any) -> None:
        from ..log import info

        self.received = signum
        self._put_back()
        info(f"{signal.Signals(signum).name}: stopping after the current step to save a checkpoint "
             "(send it again to stop at once)")

    def _put_back(self) -> None:
        for signum, handler in self.previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)
        self.previous = {}

    def __exit__(self, *exc: Any) -> None:
        self._put_back()


def _rng_state() -> dict[str, Any]:
    """Every random state a step draws from, as tensors and plain values (``weights_only``
    loads them): torch's (and CUDA's), Python's, numpy's legacy global one."""
    import torch

    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {"torch_rng": torch.get_rng_state(),
                             "python_rng": {"version": version, "internal": list(internal), "gauss": gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    try:
        import numpy
    except ImportError:
        return state
    kind, keys, pos, has_gauss, cached = numpy.random.get_state(legacy=True)
    state["numpy_rng"] = {"kind": str(kind), "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"])
    python = state["python_rng"]
    if isinstance(python, dict):
        random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    else:  # a checkpoint from before: the tuple itself
        random.setstate(tuple(python))
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if "numpy_rng" in state:
        import numpy

        saved = state["numpy_rng"]
        numpy.random.set_state((saved["kind"], saved["keys"].numpy().astype("uint32"), saved["pos"],
                                saved["has_gauss"], saved["cached_gaussian"]))


def _in_new_module(name: str, head: ModelHead) -> bool:
    """Whether parameter ``name`` belongs to one of the head's new layers (peft keeps them as
    ``...classifier.modules_to_save.default.weight``; a full model as ``classifier.weight``)."""
    parts = name.split(".")
    return any(module in parts for module in head.new_modules)
