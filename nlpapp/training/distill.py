"""Knowledge distillation: a student model trained to do what a teacher model does.

Two kinds, chosen by ``choose_kind``:

- **logit** (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network"):
  teacher and student share a vocabulary (the same token ids mean the same tokens) and a
  head, and the data has targets. At every target position the student is pulled towards
  the teacher's softened next-token distribution as well as towards the data's token:
  ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE``
  (``distillation_loss_sum``). The teacher runs frozen, in eval mode, without gradients,
  on the student's batch (``LogitDistillation``).
- **sequence** (Kim & Rush 2016, "Sequence-Level Knowledge Distillation"): the teacher
  writes the targets for the training inputs through the task's own prediction path (the
  one ``nlpapp run`` uses, with the task's options), and the student trains on those pairs
  as on any data (``teacher_examples``). It needs no shared vocabulary and no targets in
  the data: a ``.txt`` of sentences is enough.

The training loop is unchanged but for one hook: ``TrainingLoop(train_loss=...)`` takes
``LogitDistillation.loss_sum`` in place of the head's loss for the training steps; held-out
losses and scores stay the task's own, so the verdict compares like with like."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError, MissingFieldError, NlpappError
from ..head import IGNORE, Batch, Head, inputs_of

TARGETS_FILE = "teacher-targets.jsonl"  # sequence-level: the teacher's targets, beside the adapter
EVAL_TARGETS_FILE = "teacher-eval-targets.jsonl"  # the same for --eval-data inputs without targets
KINDS = ("logit", "sequence")
DISTILLABLE_HEADS = (Head.CAUSAL_LM, Head.SEQ2SEQ_LM)  # heads whose outputs are token distributions


class DistillationError(NlpappError):
    """A teacher that cannot be loaded or used, or a kind of distillation that does not fit
    the teacher, the student or the data; the message says which and what to do."""


# --- the loss ---------------------------------------------------------------------------

def distillation_loss_sum(student_logits: Any, teacher_logits: Any, targets: Any, temperature: float,
                          alpha: float) -> Any:
    """The summed distillation loss over ``N`` target positions (Hinton et al. 2015, section 2):

    ``sum_n [ alpha * T^2 * KL(softmax(t_n / T) || softmax(s_n / T)) + (1 - alpha) * CE(s_n, y_n) ]``

    ``student_logits`` and ``teacher_logits``: ``[N, V]`` float logits (unnormalised log
    probabilities, in nats after ``log_softmax``) at the same positions; a wider logit matrix
    (an embedding padded past the tokenizer, as Qwen's) is cut to the narrower one's ``V``,
    which the shared vocabulary lies within. ``targets``: ``[N]`` token ids (no ``IGNORE``
    among them). The KL is scaled by ``T^2`` because the gradients of the softened term
    shrink as ``1/T^2`` (Hinton et al.): so its weight against the hard-target term stays
    ``alpha`` whatever ``T``. Returns a scalar tensor, in nats summed over positions (the
    loop divides by the global target count, as it does the task's loss); the student's
    gradients flow, the teacher's logits are treated as constants."""
    import torch.nn.functional as F

    width = min(student_logits.shape[-1], teacher_logits.shape[-1])
    student = student_logits[..., :width].float()
    teacher = teacher_logits[..., :width].float().detach()
    # KL(p_t || p_s) = sum_v p_t (log p_t - log p_s); kl_div takes the student's log-probabilities first
    kl = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                  log_target=True, reduction="sum")
    loss = alpha * temperature ** 2 * kl
    if alpha < 1:
        loss = loss + (1 - alpha) * F.cross_entropy(student, targets, reduction="sum")
    return loss


def kl_sum(student_logits: Any, teacher_logits: Any, temperature: float = 1.0) -> Any:
    """``sum_n KL(softmax(t_n / T) || softmax(s_n / T))`` over ``[N, V]`` logits, in nats: how
    far the student's distributions are from the teacher's (0 when they agree)."""
    return distillation_loss_sum(student_logits, teacher_logits, None, temperature, 1.0) / temperature ** 2


def target_logits(model: Any, batch: Batch, head: str) -> tuple[Any, Any]:
    """``(logits [N, V], targets [N])`` of ``model`` at the ``N`` target positions of a padded
    ``batch`` (labels other than ``IGNORE``). A causal LM's position ``p`` predicts token
    ``p + 1``; where the model takes ``logits_to_keep``, logits are computed only at positions
    some row has a target (as ``runtime.heads.causal_loss_sum`` does). A seq2seq model reads
    the labels as its decoder inputs (shifted inside the model)."""
    from ..runtime.heads import accepts_logits_to_keep

    inputs, labels = inputs_of(batch), batch["labels"]
    if head == Head.CAUSAL_LM:
        targets = labels[:, 1:]
        positions = (targets != IGNORE).any(0).nonzero().squeeze(1)
        if accepts_logits_to_keep(model):
            logits = model(**inputs, logits_to_keep=positions).logits
        else:
            logits = model(**inputs).logits[:, :-1][:, positions]
        targets = targets[:, positions]
    else:
        logits, targets = model(**inputs, labels=labels).logits, labels
    keep = targets != IGNORE
    return logits[keep], targets[keep]


@dataclass
class LogitDistillation:
    """The training loss of logit distillation (``TrainingLoop(train_loss=self.loss_sum)``).
    ``teacher``: the teacher's torch module, frozen here (eval mode, no gradients) and moved
    to ``device``; ``head``: the student's (and teacher's) head name."""

    teacher: Any
    head: str
    temperature: float
    alpha: float
    device: str

    def __post_init__(self) -> None:
        self.teacher = self.teacher.to(self.device).eval()  # eval: no dropout in the targets
        self.teacher.requires_grad_(False)

    def loss_sum(self, student: Any, batch: Batch) -> Any:
        """``distillation_loss_sum`` of ``student`` against the teacher on ``batch``, summed
        over its target tokens (the head's ``target_count``), as ``ModelHead.loss_sum`` is."""
        import torch

        student_logits, targets = target_logits(student, batch, self.head)
        with torch.no_grad():
            teacher_logits, _ = target_logits(self.teacher, batch, self.head)
        return distillation_loss_sum(student_logits, teacher_logits, targets, self.temperature, self.alpha)


# --- choosing the kind ------------------------------------------------------------------

def shares_vocabulary(teacher_tokenizer: Any, student_tokenizer: Any) -> bool:
    """Whether the same token id means the same token to both tokenizers (``get_vocab()``
    equal): the condition for comparing their logits position by position."""
    if teacher_tokenizer is None or student_tokenizer is None:
        return False
    return teacher_tokenizer.get_vocab() == student_tokenizer.get_vocab()


def choose_kind(requested: str, *, teacher: str, student: str, shared_vocabulary: bool, same_head: bool,
                has_targets: bool, objective: str) -> str:
    """``logit`` or ``sequence`` for ``--distill-kind requested`` (auto, logit, sequence).
    ``auto`` is logit where it can be (a shared vocabulary, the same head, data with targets)
    and sequence otherwise. Raises ``DistillationError`` for a kind that cannot be done."""
    why_not_logit = ("the teacher and the student do not share a vocabulary (their tokenizers differ), so their "
                     "logits cannot be compared token by token" if not shared_vocabulary else
                     "the teacher and the student have different heads (a causal and a seq2seq model), so their "
                     "logits are not at the same positions" if not same_head else
                     "the data has no targets to compare the distributions at" if not has_targets else None)
    if objective == "lm":
        if requested == "sequence" or why_not_logit:
            raise DistillationError(
                f"--teacher {teacher} with --objective lm: raw text has no inputs for a teacher to answer, so only "
                "logit distillation works there, and "
                + (f"{why_not_logit} ({teacher} and {student})" if why_not_logit else "--distill-kind sequence "
                   "asks for the other") + "; distil on a task's examples instead (drop --objective lm)")
        return "logit"
    if requested == "logit" and why_not_logit:
        raise DistillationError(f"--distill-kind logit: {why_not_logit} ({teacher} and {student}); use "
                                "--distill-kind sequence (the teacher writes the targets) or auto")
    if requested == "auto":
        return "sequence" if why_not_logit else "logit"
    return requested


# --- the teacher ------------------------------------------------------------------------

def load_teacher(runtime: Any, spec: str, task: Any) -> Any:
    """The teacher ``Model``, through the runtime's model store (the same ``load_model``
    hook as the student; cached, so the sequence-level prediction reuses it). Raises
    ``DistillationError`` in one line when it cannot be loaded or cannot do ``task``."""
    try:
        model = runtime.models.load(spec)
        task.check_model(model)
    except NlpappError as exc:
        raise DistillationError(f"--teacher {spec} cannot be used: {exc}") from None
    if model.head not in DISTILLABLE_HEADS:
        raise DistillationError(f"--teacher {spec} has a {model.head} head; a teacher writes text or token "
                                f"distributions ({', '.join(DISTILLABLE_HEADS)})")
    return model


def check_task(task: Any, student_head: str, teacher: str) -> None:
    """Distillation needs a student that outputs token distributions (a language model)."""
    if student_head not in DISTILLABLE_HEADS:
        raise DistillationError(f"--teacher {teacher}: distillation trains a language model ({', '.join(DISTILLABLE_HEADS)}); "
                                f"task {task.name!r} trains a {student_head} head")


def read_inputs(runtime: Any, task: Any, sources: list[str], columns: dict[str, str]
                ) -> tuple[list[Any], list[dict[str, str]] | None]:
    """Every record of ``sources`` as the task's typed input, and their targets when every
    record has them (``None`` when none has: a ``.txt`` of inputs). All bad records are
    reported together before any model loads (``datasets.validate``); some records with
    targets and some without is an ``InputError``."""
    from .. import datasets

    items: list[Any] = []
    targets: list[dict[str, str] | None] = []
    for spec in sources:
        def keep(record: dict[str, Any], where: str) -> None:
            if all(record.get(name) is not None for name in task.target_fields):
                item, found = task.make_example(record, where)
            else:
                item, found = task.make_input(record, where), None
            items.append(item)
            targets.append(found)
        datasets.validate(datasets.open_records(runtime.registries, task, spec, columns), keep, spec)
    labelled = sum(t is not None for t in targets)
    if 0 < labelled < len(targets):
        raise InputError(f"{', '.join(sources)}: {labelled} of {len(targets)} records have targets "
                         f"({', '.join(task.target_fields)}); with --teacher give targets for all or for none "
                         "(then the teacher writes them)")
    return items, (targets if labelled else None)  # type: ignore[return-value]


def teacher_examples(runtime: Any, task: Any, teacher: str, items: list[Any], options: dict[str, Any],
                     batch_size: int, show_progress: bool = True) -> list[tuple[Any, dict[str, str]]]:
    """Sequence-level distillation's data: each input with the teacher's output as its target,
    made by the task's prediction path (``api.run``, as ``nlpapp run`` does) with ``options``
    (the task's, such as ``target_lang``), greedy unless they say otherwise. A progress bar
    counts the inputs on stderr. An empty output is refused: the student cannot learn it."""
    from ..api import run

    records = [(f"input {n}", dataclasses.asdict(item)) for n, item in enumerate(items, start=1)]
    progress = None
    if show_progress:
        from tqdm import tqdm

        progress = tqdm(total=len(items), unit="input", file=sys.stderr, desc=f"teacher {teacher}")
    try:
        outputs = run(runtime, task.name, records, model=teacher, options=options, batch_size=batch_size,
                      on_batch=progress.update if progress else None)
        pairs = [(item, {task.target_fields[0]: task.prediction_text(output).strip()}) for item, output in outputs]
    finally:
        if progress is not None:
            progress.close()
    empty = [n for n, (_, t) in enumerate(pairs, start=1) if not t[task.target_fields[0]]]
    if empty:
        raise DistillationError(f"--teacher {teacher} wrote nothing for {len(empty)} of {len(pairs)} inputs (the "
                                f"first: input {empty[0]}); check the task's options (such as --max-new-tokens) or "
                                "use another teacher")
    return pairs


def write_targets(path: Path, pairs: Iterable[tuple[Any, dict[str, str]]]) -> int:
    """The teacher's examples as JSONL (each input's fields and its target fields), the
    format ``--data`` reads; returns the number of rows."""
    from ..api import write_jsonl

    return write_jsonl(path, ({**dataclasses.asdict(item), **targets} for item, targets in pairs))


def read_targets(path: Path, task: Any) -> list[tuple[Any, dict[str, str]]]:
    """The examples ``write_targets`` wrote (a resumed run reuses them)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        return [task.make_example(row, f"{path}:{n}") for n, row in enumerate(rows, start=1)]
    except MissingFieldError as exc:
        raise DistillationError(f"{exc}; start again with --overwrite") from None


def summary(teacher: Any, spec: str, kind: str, temperature: float, alpha: float,
            examples: int | None = None) -> dict[str, Any]:
    """What the manifest records of a distillation: the teacher and how it taught."""
    logit = kind == "logit"
    return {"teacher": {"spec": spec, "path": getattr(teacher, "name", spec),
                        "model_type": getattr(teacher, "model_type", None), "head": teacher.head},
            "kind": kind, "temperature": temperature if logit else None, "alpha": alpha if logit else None,
            "targets_file": None if logit else TARGETS_FILE, "teacher_examples": examples}
