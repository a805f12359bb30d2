"""``train()``: data -> features -> a LoRA-wrapped (or fully trainable) model -> the loop ->
an adapter folder with its manifest, written whole or not at all."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError, NlpappError, TrainingError
from ..head import Head, ModelHead
from ..hookcall import notify
from ..labels import base_labels
from .. import log
from ..log import info
from ..recipe import LANGUAGE_MODELLING
from ..runtime import adapters
from ..task import TaskKind, TrainingContext
from ..types import LoadOptions
from . import distill, distributed, quantize
from .config import RECIPE_FIELDS, TrainConfig
from .head_init import balance_classes, initialise_classifier
from .loop import TrainingLoop, effective_mixed_precision
from .selection import PerplexityScorer, TaskScorer, held_out_indices, verdict



def expand_files(patterns: list[str], option: str, registries: Any = None) -> list[str]:
    """Globs to files, in a stable order; a pattern that matches nothing is an error.
    A registered dataset name (with ``registries``) is kept as it is."""
    from .. import datasets

    files: list[str] = []
    for pattern in patterns:
        if registries is not None and datasets.is_registered(registries, pattern):
            files.append(pattern)
            continue
        matched = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matched:
            raise InputError(f"{option} {pattern!r} matches no file")
        for path in matched:
            if not Path(path).is_file():
                raise InputError(f"{option}: {path} does not exist" if not Path(path).exists()
                                 else f"{option}: {path} is not a file")
            files.append(path)
    return files


def data_digests(files: list[str], runtime: Any = None, task: TaskKind | None = None) -> list[str]:
    """The sha256 of each file's bytes, or of each registered dataset's records. Whole
    files: reading them to train costs as much, and a changed line anywhere must show."""
    from .. import datasets
    from ..runtime.gguf import sha256_file

    parts = []
    for spec in files:
        if runtime is not None and task is not None and datasets.is_registered(runtime.registries, spec):
            records = [r for _, r in datasets.open_records(runtime.registries, task, spec)]
            parts.append(hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest())
        else:
            parts.append(sha256_file(Path(spec)))
    return parts


def data_hash(files: list[str], runtime: Any = None, task: TaskKind | None = None,
              digests: list[str] | None = None) -> str:
    """One hash of the training data: each file's bytes, or each registered dataset's records
    (``digests``: ``data_digests`` of ``files``, already computed)."""
    parts = digests if digests is not None else data_digests(files, runtime, task)
    return hashlib.sha256("".join(parts).encode()).hexdigest()[:16]


MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
EDGE_BYTES = 1 << 20  # a weight file is fingerprinted by its first and last MB, its size and its time


def model_file_fingerprints(path: str) -> dict[str, str]:
    """A fingerprint of each weight file (and config.json) of a local model folder: size,
    modification time and the sha256 of its first and last MB. Cheap on a many-GB model;
    a file rewritten in place changes its time. Nothing for a hub id (not a local path)."""
    import datetime

    folder = Path(path)
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix in MODEL_FILE_SUFFIXES
                                                                   or p.name == "config.json")) \
        if folder.is_dir() else [folder] if folder.is_file() else []
    found = {}
    for file in files:
        stat = file.stat()
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            digest.update(handle.read(EDGE_BYTES))
            if stat.st_size > EDGE_BYTES:
                handle.seek(max(EDGE_BYTES, stat.st_size - EDGE_BYTES))
                digest.update(handle.read(EDGE_BYTES))
        modified = datetime.datetime.fromtimestamp(stat.st_mtime_ns / 1e9).isoformat(timespec="microseconds")
        found[str(file)] = f"{stat.st_size} bytes, modified {modified}, sha256 of the ends {digest.hexdigest()[:12]}"
    return found


def read_examples(runtime: Any, task: TaskKind, sources: list[str], columns: dict[str, str]
                  ) -> list[tuple[Any, dict[str, str]]]:
    """Every example of every source, each checked against the task's schema first: all the
    bad records are reported together, before any model is loaded."""
    from .. import datasets

    examples = []
    for spec in sources:
        def keep(record: dict[str, Any], where: str) -> None:
            examples.append(task.make_example(record, where))
        datasets.validate(datasets.open_records(runtime.registries, task, spec, columns), keep, spec)
    return examples


def warn_capitalised_targets(task: TaskKind, examples: list[tuple[Any, dict[str, str]]]) -> None:
    """Say when most generated targets are in capitals (wire-service headlines): measured on
    Reuters with smollm2, an adapter trained on them wrote capitals and lost the content (dev
    ROUGE-L 15-18 against the base's 29.5), one trained on the same titles in lower case
    scored 30.1 (docs/training.md, "Recipes, measured")."""
    from ..stages import TextToTextTask

    if not isinstance(task, TextToTextTask) or not examples:
        return
    targets = [task.target(t) for _, t in examples]
    capitals = sum(len([c for c in t if c.isalpha()]) >= 3 and t.isupper() for t in targets)
    if capitals * 2 > len(targets):
        log.warn(f"{capitals} of {len(targets)} training targets are in capitals; a small model learns their "
                 "spelling before their content: lower-case them if your metric ignores case (ROUGE does)")


def read_texts(files: list[str]) -> list[str]:
    """Raw text for the lm objective: each .txt file whole; JSONL/CSV through the 'text' field."""
    texts = []
    for path in files:
        if path.endswith(".txt"):
            texts.append(Path(path).read_text(encoding="utf-8"))
        else:
            from ..runtime.records import read_records

            texts.extend(str(r.get("text", "")) for _, r in read_records(path, "text"))
    if not any(t.strip() for t in texts):
        raise InputError(f"no text in {', '.join(files)}")
    return texts


def _check_output_spares_inputs(output: Path, paths: list[str]) -> None:
    """The adapter folder replaces ``output`` whole (with --overwrite): it must not be, or
    hold, a data file or the base model's folder (names that are not paths are skipped)."""
    target = output.resolve()
    for given in paths:
        path = Path(given).resolve()
        if path.exists() and (path == target or target in path.parents):
            raise NlpappError(f"--output {output} would replace {given}, which this run reads; write the adapter "
                              "to another folder")


def _check_output(output: Path, resume: bool, overwrite: bool) -> None:
    if resume and (output / adapters.MANIFEST).is_file():
        raise NlpappError(f"{output} is already a finished adapter; nothing to resume")
    if output.exists() and not resume and not overwrite:
        raise NlpappError(f"--output {output} already exists; pass --overwrite to replace it")
    if not resume and not overwrite:  # starting afresh would throw an interrupted run's steps away
        from .loop import CHECKPOINT_PREFIX

        steps = [json.loads((p / "checkpoint.json").read_text())["step"] for p in
                 (output.parent / f".{output.name}.checkpoints").glob(f"{CHECKPOINT_PREFIX}*")
                 if (p / "checkpoint.json").is_file()]
        if steps:
            raise NlpappError(f"an interrupted run into {output} left a checkpoint at step {max(steps)}; "
                              "pass --resume to continue it or --overwrite to start over")
    if output.exists() and not output.is_dir():
        raise NlpappError(f"--output {output} is a file; an adapter is a folder: name a new one")
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NlpappError(f"cannot write {output}: {exc.strerror or exc}") from None
    import os

    if not os.access(parent, os.W_OK):
        raise NlpappError(f"cannot write {output}: no permission to write in {parent}")


def train(runtime: Any, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          load_options: LoadOptions | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Train and write ``config.output``; returns the adapter's manifest. The output is
    written whole or not at all: any error leaves an existing one as it was.

    Raises ``NlpappError`` for bad options, data or a checkpoint ``resume`` cannot use (other
    options, data content or base weights; a state.pt that is not plain data),
    ``errors.TrainingError`` when the loss, gradients or weights stop being finite, memory
    runs out, or the output or a checkpoint cannot be written (a full disk), and
    ``errors.TrainingInterrupted`` after SIGINT/SIGTERM, with a checkpoint to resume from.
    The policies are in ``training.loop``'s docstring."""
    from ..runtime.device import resolve_device

    load_options = load_options or LoadOptions()
    task = runtime.task(config.task)
    output = Path(config.output)
    _check_output(output, resume, overwrite)
    checkpoints = output.parent / f".{output.name}.checkpoints"
    if not resume:
        shutil.rmtree(checkpoints, ignore_errors=True)
    config.data = expand_files(config.data, "--data", runtime.registries)
    config.eval_data = expand_files(config.eval_data, "--eval-data", runtime.registries)
    _check_output_spares_inputs(output, [*config.data, *config.eval_data, config.model])
    device = resolve_device(load_options.device)
    if config.quantize:  # before anything loads: no GPU or no bitsandbytes is one line
        quantize.check_available(config.quantize, device)
    world = distributed.init(device)
    if device == "cuda" and world.size > 1:
        device = f"cuda:{world.local_rank}"

    heads = runtime.registries.heads
    chosen: list[int] = []  # indices of the examples (or lm blocks) held out of --data
    sources = None  # with a teacher: (inputs, targets or None) of --data and of --eval-data
    if config.objective == "lm":
        head = heads.get(Head.CAUSAL_LM)
        base_head = runtime.models.base_head(config.model)
        if base_head not in (None, Head.CAUSAL_LM):
            raise NlpappError(f"--objective lm needs a causal language model; {config.model!r} has the head {base_head!r}")
        recipe = LANGUAGE_MODELLING
        if config.select_by not in (None, "perplexity"):
            raise NlpappError(f"--select-by {config.select_by}: --objective lm is scored by perplexity only")
        examples, held_out = [], []
    else:
        if not task.target_fields:
            raise NlpappError(f"task {task.name!r} cannot be trained")
        # the data first: a bad file is reported before a model is located (or converted)
        if config.teacher:  # inputs, with targets where the data has them (the teacher writes the rest)
            sources = tuple(distill.read_inputs(runtime, task, files, config.columns) if files else ([], None)
                            for files in (config.data, config.eval_data))
            examples, held_out = (list(zip(items, targets or [])) for items, targets in sources)
        else:
            examples = read_examples(runtime, task, config.data, config.columns)
            held_out = read_examples(runtime, task, config.eval_data, config.columns) if config.eval_data else []
            warn_capitalised_targets(task, examples)
        base_head = runtime.models.base_head(config.model) or task.heads[0]
        head_name = task.training_head(base_head)
        if head_name not in task.heads:
            raise NlpappError(f"task {task.name!r} cannot train model {config.model!r} (its head: {base_head}); "
                              f"it trains models with these heads: {', '.join(task.heads)}")
        if head_name not in heads:
            raise NlpappError(f"task {task.name!r} trains a {head_name!r} head, which no installed plugin "
                              "registers; install the plugin that provides it (nlpapp plugins list)")
        head = heads.get(head_name)
        recipe = task.training_recipe(head.name)
        if config.teacher:
            distill.check_task(task, head.name, config.teacher)
        elif not config.eval_data:  # with a teacher, once its targets are known
            examples, held_out, chosen = _hold_out(examples, config, world, "examples")
    if head.peft_task_type is None and not config.full:
        raise NlpappError(f"the {head.name} head cannot be trained with LoRA; pass --full")
    from_recipe = sorted(name for name in (*RECIPE_FIELDS, "epochs") if getattr(config, name) is None)
    if config.target_modules is None and recipe.target_modules is not None:
        from_recipe = sorted([*from_recipe, "target_modules"])
    config = config.with_recipe(recipe)
    config = dataclasses.replace(config, mixed_precision=effective_mixed_precision(config.mixed_precision, device))
    options = {**recipe.options, **config.options}  # the recipe's decoding defaults under the user's options
    parsed_options = task.parse_options(options)

    label_ids = _label_ids(runtime, config, task, head, examples, held_out) if head.uses_labels else {}

    import torch

    torch.manual_seed(config.seed)  # a new head's initial weights, and LoRA's, come from it
    if config.quantize:  # QLoRA: the frozen base quantized, LoRA in float32 on top
        model = runtime.models.load_uncached(config.model, head.name, tuple(label_ids) or None,
                                             quantize.load_options(load_options, config.quantize, device))
    else:
        model = runtime.models.load_uncached(config.model, head.name, tuple(label_ids) or None, dataclasses.replace(
            load_options, device=device, dtype="float32"))  # training runs in float32; the rest as the user chose
    module = model.trainable_module()  # refuses a backend that has no torch module
    resolved = runtime.models.resolve(config.model)
    tokenizer = model.tokenizer
    window = getattr(model, "max_input_tokens", None)
    if window and config.max_length > window:  # longer examples would not fit the position embeddings
        if "max_length" not in from_recipe:  # the user's own value: say so (a recipe's is capped quietly)
            log.warn(f"--max-length {config.max_length} is longer than {config.model}'s window of {window} "
                     f"tokens; training at {window}")
        config = dataclasses.replace(config, max_length=window)
    distiller, distillation, teacher_files = None, None, []
    if config.teacher:
        distiller, distillation, teacher_files, examples, held_out, chosen = _distil(
            runtime, config, task, head.name, model, options, examples, held_out, sources, checkpoints, world,
            device, resume, show_progress)
    if config.objective == "lm":
        from .features import lm_blocks

        train_features = lm_blocks(tokenizer, read_texts(config.data), config.max_length)
        if config.eval_data:
            held_out = lm_blocks(tokenizer, read_texts(config.eval_data), config.max_length)
        else:
            # the last blocks, not random ones: a block's neighbours would leak its passage into training
            train_features, held_out, chosen = _hold_out(train_features, config, world, "blocks of text",
                                                         contiguous=True)
        eval_features: list[dict[str, Any]] = []  # the perplexity scorer reads the held-out blocks
    else:
        ctx = TrainingContext(model, head.name, config.max_length, parsed_options, label_ids)
        train_features = [f for item, targets in examples for f in task.training_features(item, targets, ctx)]
        eval_features = [f for item, targets in held_out for f in task.training_features(item, targets, ctx)]
    if config.epochs is None:  # the recipe's epochs, lengthened on small data to its minimum steps
        global_batch = config.batch_size * config.grad_accum * world.size
        config = dataclasses.replace(config, epochs=recipe.epochs_for(len(train_features) // global_batch))

    head_init, class_weights = None, None
    if head.uses_labels and config.objective == "task":
        if not base_labels(runtime, config.model, head.name):
            # a new head: start it from what the encoder knows, and weigh rare labels up
            head_init = initialise_classifier(model, head, task, parsed_options, train_features, label_ids,
                                              config.max_length)
            class_weights = balance_classes(train_features, label_ids)
        elif "head_lr" in from_recipe:  # the base's trained head is kept: it learns at --lr, as the rest
            config = dataclasses.replace(config, head_lr=config.lr)

    fingerprint = adapters.base_fingerprint(module, head.new_modules)
    if config.quantize:
        module = quantize.prepare(module, config.gradient_checkpointing)
    trained = _prepare_trainable(runtime, module, model.model_type, head, config)
    scorer = None
    if held_out and config.objective == "lm":
        scorer = PerplexityScorer(trained, head, held_out, tokenizer.pad_token_id, device)
    elif held_out and task.metrics:
        scorer = TaskScorer(runtime, task, model, held_out, parsed_options, config.batch_size, config.select_by)
    elif held_out and world.is_main:
        info(f"task {task.name!r} names no metric: the held-out loss is reported, but no checkpoint is picked "
             "and there is no verdict against the base")
    if scorer is None and config.select_by and "select_by" not in from_recipe:
        raise NlpappError("--select-by needs held-out examples scored by a task metric: pass --eval-data (or a "
                          "--holdout share above 0) with a task that names a metric")
    # what --resume checks besides the options: the data's content and the base model's
    # weights, at the same paths
    train_digests = data_digests(config.data, runtime, task)
    inputs = {**{f"the content of --data {p}": d for p, d in zip(config.data, train_digests)},
              **{f"the content of --eval-data {p}": d for p, d in zip(config.eval_data, data_digests(
                  config.eval_data, runtime, task))},
              **{f"the base model's file {name}": value for name, value in model_file_fingerprints(resolved.path).items()},
              "the base model's weights": fingerprint}
    if config.teacher:  # the teacher's weights decide the targets: a resumed run must find the same
        inputs.update({f"the teacher's file {name}": value for name, value in
                       model_file_fingerprints(runtime.models.resolve(config.teacher).path).items()})
    hook = runtime.plugins.hook
    loop = TrainingLoop(config, trained, head, tokenizer.pad_token_id, train_features, eval_features, world,
                        device, checkpoints, checkpoints / "train-log.jsonl",
                        on_step=lambda m: notify(hook.on_train_step, step=m["step"], metrics=m),
                        on_evaluate=lambda m: notify(hook.on_evaluate, step=m["step"], metrics=m), scorer=scorer,
                        inputs=inputs, train_loss=distiller.loss_sum if distiller else None)
    checkpoints.mkdir(parents=True, exist_ok=True)  # only now: a run refused above leaves no folder
    notify(hook.on_train_begin, config=config, model=trained)
    progress = None
    if show_progress and world.is_main:
        from tqdm import tqdm

        progress = tqdm(total=loop.total_steps, initial=0, unit="step", file=sys.stderr, desc=f"train {task.name}")
    try:
        result = loop.run(resume, progress)
    except TrainingError:
        if loop.latest_checkpoint() is None and world.is_main:  # nothing to go back to: leave nothing
            shutil.rmtree(checkpoints, ignore_errors=True)
        raise
    finally:
        if progress is not None:
            progress.close()

    manifest = {
        "kind": "full" if config.full else "lora",
        "task": task.name,
        "head": head.name,
        "family": head.name,  # the key readers before heads were registered look for
        "base_model": {"spec": config.model, "path": resolved.path, "fingerprint": fingerprint,
                       "fingerprint_version": adapters.FINGERPRINT_VERSION,
                       "model_type": model.model_type},
        "labels": list(label_ids),
        "head_init": head_init,  # how a new classifier head was initialised (None: drawn from --seed)
        "class_weights": class_weights,  # the loss weight of each label (scikit-learn's "balanced")
        "config": config.as_dict(),  # the effective settings: the recipe's where none was given
        "from_recipe": from_recipe,
        "options": options,  # task options the adapter was trained and evaluated with, reused when it runs
        "data": {"files": config.data, "sha256": data_hash(config.data, digests=train_digests),
                 "eval_files": config.eval_data, "train_features": len(train_features),
                 "held_out": len(held_out), "held_out_from": "eval_data" if config.eval_data else
                 ("holdout" if held_out else None), "held_out_indices": chosen, "eval_features": len(eval_features)},
        "metrics": {"steps": result.steps, "final_loss": result.final_loss,
                    **{k: v for k, v in result.eval.items() if k.startswith("eval_")}},
        "versions": adapters.versions(),
    }
    if distillation is not None:
        manifest["distillation"] = distillation
    if config.quantize:  # adapters merge refuses to merge into the quantized base without --dequantize
        manifest["quantization"] = quantize.describe(config.quantize)
    if scorer is not None and result.best is not None and result.base is not None:
        manifest["selection"] = {"select_by": scorer.select_by, "best_step": result.best.step,
                                 "stopped_early": result.stopped_early,
                                 "evaluations": sum(1 for r in result.log if r["kind"] == "eval")}
        manifest["verdict"] = verdict(scorer, result.base, result.best)
    if world.is_main:
        _write_output(output, trained, tokenizer, manifest, result.log, overwrite or resume, config, teacher_files)
        shutil.rmtree(checkpoints, ignore_errors=True)
        adapters.remember(output)
        notify(hook.on_train_end, output=str(output), manifest=manifest)
    distributed.barrier(world)
    distributed.shutdown(world)
    return manifest


def _distil(runtime: Any, config: TrainConfig, task: TaskKind, head_name: str, student: Any, options: dict[str, Any],
            examples: list, held_out: list, sources: tuple | None, checkpoints: Path, world: Any, device: str,
            resume: bool, show_progress: bool) -> tuple[Any, dict[str, Any], list[Path], list, list, list[int]]:
    """The teacher loaded and the kind of distillation chosen (``distill.choose_kind``). For
    sequence-level, the teacher writes the targets of the training inputs (and of
    ``--eval-data`` inputs without targets, whatever the kind) into ``checkpoints``, whence
    they go into the output; then the held-out share is drawn. Returns ``(the logit loss or
    None, the manifest's record, the files written, examples, held-out examples, held-out
    indices)``."""
    teacher = distill.load_teacher(runtime, config.teacher, task)
    kind = distill.choose_kind(
        config.distill_kind, teacher=config.teacher, student=config.model,
        shared_vocabulary=distill.shares_vocabulary(getattr(teacher, "tokenizer", None), student.tokenizer),
        same_head=teacher.head == head_name, has_targets=config.objective == "lm" or bool(examples),
        objective=config.objective)
    files: list[Path] = []
    chosen: list[int] = []
    written = 0
    if config.objective == "task":
        (items, _), (eval_items, eval_targets) = sources
        if kind == "sequence":
            files.append(checkpoints / distill.TARGETS_FILE)
            examples = _teacher_written(runtime, config, task, items, options, files[-1], world, resume, show_progress)
            written += len(examples)
        if eval_items and eval_targets is None:  # held-out inputs alone: scored against the teacher's outputs
            files.append(checkpoints / distill.EVAL_TARGETS_FILE)
            held_out = _teacher_written(runtime, config, task, eval_items, options, files[-1], world, resume,
                                        show_progress)
            written += len(held_out)
        if not config.eval_data:
            examples, held_out, chosen = _hold_out(examples, config, world, "examples")
    distiller = distill.LogitDistillation(teacher.trainable_module(), head_name, config.distill_temperature,
                                          config.distill_alpha, device) if kind == "logit" else None
    if world.is_main:
        info(f"distilling from {config.teacher}: " + (
            f"logit (T {config.distill_temperature:g}, alpha {config.distill_alpha:g})" if distiller else
            "sequence-level (the student trains on the teacher's outputs)"))
    record = distill.summary(teacher, config.teacher, kind, config.distill_temperature, config.distill_alpha,
                             written or None)
    return distiller, record, files, examples, held_out, chosen


def _teacher_written(runtime: Any, config: TrainConfig, task: TaskKind, items: list[Any], options: dict[str, Any],
                     path: Path, world: Any, resume: bool, show_progress: bool) -> list:
    """The teacher's examples for ``items``, written to ``path`` by the main process (the
    others read them); a resumed run reuses the ones an earlier try wrote."""
    if resume and path.is_file():
        pairs = distill.read_targets(path, task)
        if len(pairs) == len(items):
            return pairs
    if world.is_main:
        pairs = distill.teacher_examples(runtime, task, config.teacher, items, options, config.batch_size,
                                         show_progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        distill.write_targets(path, pairs)
        info(f"the teacher wrote targets for {len(pairs)} inputs: {path} (it goes into --output with the adapter)")
    distributed.barrier(world)
    return pairs if world.is_main else distill.read_targets(path, task)


def _hold_out(items: list[Any], config: TrainConfig, world: Any, what: str, contiguous: bool = False
              ) -> tuple[list[Any], list[Any], list[int]]:
    """Without --eval-data, a seeded share of the training data held out (with
    ``contiguous``, the same number of items from the end), and said so: ``(kept, held out,
    the held-out indices)``."""
    chosen = held_out_indices(len(items), config.holdout, config.seed)
    if contiguous:
        chosen = list(range(len(items) - len(chosen), len(items)))
    picked = set(chosen)
    kept, held_out = [x for i, x in enumerate(items) if i not in picked], [items[i] for i in chosen]
    if held_out and world.is_main:
        which = f"the last {len(held_out)}" if contiguous else f"{len(held_out)}"
        how = f"--holdout {config.holdout}" + ("" if contiguous else f", seed {config.seed}")
        info(f"holding out {which} of {len(items)} {what} ({how}) to pick the best checkpoint and measure the "
             "adapter against the base; --eval-data names your own")
    return kept, held_out, chosen


def _label_ids(runtime: Any, config: TrainConfig, task: TaskKind, head: ModelHead, examples: list,
               eval_examples: list) -> dict[str, int]:
    """Label name -> id for a head with labels: for a new head, the names in the training
    data, sorted; for a base whose own head is trained, that head's ids, named by the data's
    labels through ``config.label_map`` (``nlpapp.labels.training_ids``: its weights are kept)."""
    from .. import labels as label_names

    labels = sorted({name for _, targets in examples for name in task.label_names(targets)})
    if len(labels) < 2:
        raise InputError(f"the training data has a single label ({labels[0]!r}); a classifier needs two or more"
                         if labels else "the training data has no labels")
    unseen = sorted({name for _, targets in eval_examples for name in task.label_names(targets)} - set(labels))
    if unseen:
        raise InputError(f"the held-out examples have labels not seen in training: {', '.join(unseen)}"
                         + ("" if config.eval_data else "; pass --eval-data, or more examples of each label"))
    base = label_names.base_labels(runtime, config.model, head.name)
    return label_names.training_ids(labels, base, config.label_map, config.model)


def _prepare_trainable(runtime: Any, hf_model: Any, model_type: str, head: ModelHead, config: TrainConfig) -> Any:
    """Wrap the model for LoRA (or leave every weight trainable with ``full``); a new
    head's modules are trained whole and saved beside the LoRA weights."""
    if config.gradient_checkpointing:
        # transformers 5 renamed it; older releases have only the first name
        enable = getattr(hf_model, "activation_checkpointing_enable", None) or hf_model.gradient_checkpointing_enable
        enable()
        hf_model.enable_input_require_grads()
    if config.full:
        for param in hf_model.parameters():
            param.requires_grad_(True)
        return hf_model
    from peft import LoraConfig, get_peft_model

    targets = config.target_modules or _preset_targets(runtime, model_type)
    present = {name.rsplit(".", 1)[-1] for name, _ in hf_model.named_modules()}
    lora = LoraConfig(task_type=head.peft_task_type, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      # "all-linear" is peft's shorthand, given as the string itself
                      target_modules="all-linear" if list(targets) == ["all-linear"] else list(targets),
                      modules_to_save=[m for m in head.new_modules if m in present] or None)
    try:
        return get_peft_model(hf_model, lora)
    except ValueError as exc:
        raise NlpappError(f"cannot attach LoRA to {config.model!r}: {exc}; set --target-modules") from None


def _preset_targets(runtime: Any, model_type: str) -> tuple[str, ...]:
    for preset in runtime.registries.lora_presets:
        if model_type in preset.model_types:
            return preset.target_modules
    raise NlpappError(f"no LoRA preset for architecture {model_type!r}; name the modules with --target-modules")


def _write_output(output: Path, trained: Any, tokenizer: Any, manifest: dict[str, Any],
                  log: list[dict[str, Any]], replace: bool, config: TrainConfig, extra: list[Path] = ()) -> None:
    from ..errors import TrainingError
    from ..runtime.atomic import atomic_folder
    from .plot import loss_curve

    existed = output.exists()
    try:
        with atomic_folder(output, replace=replace) as scratch:
            if config.full:  # the model folder names its head, found again on load (hf.detect_head)
                trained.config.nlpapp_head = manifest["head"]
            trained.save_pretrained(scratch)
            if config.full:
                tokenizer.save_pretrained(scratch)
            (scratch / "train-log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
            loss_curve(log, scratch / "loss-curve.png", f"{manifest['task']} on {config.model}",
                       (manifest.get("selection") or {}).get("select_by"))
            adapters.write_manifest(scratch, manifest)  # its presence means complete (the folder is renamed whole)
            for path in extra:  # after the manifest: data to look at, not hashed as files a loader reads
                shutil.copyfile(path, scratch / path.name)
    except OSError as exc:  # a full disk, most often: the scratch folder is gone, the old output untouched
        raise TrainingError(f"cannot write {output}: {exc.strerror or exc}; "
                            + (f"the existing {output} is unchanged" if existed else "nothing was written")
                            + "; free some space and train again") from None
