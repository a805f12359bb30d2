"""``nlpapp train TASK``: LoRA (or full) fine-tuning, one subcommand per trainable task.

Runs the same under ``torchrun --nproc-per-node N -m nlpapp train ...`` or
``accelerate launch -m nlpapp train ...`` (DDP)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import click

from ..declarative import TaskFile
from ..task import TaskKind
from ..types import LoadOptions
from .. import runs
from . import declared
from ..errors import NlpappError
from .run import DTYPES, pop_task_options, task_option_params


def _params(task: TaskKind) -> list[click.Parameter]:
    O = click.Option
    return [
        click.Argument(["more_data"], nargs=-1, metavar="[FILES]..."),
        O(["--data"], multiple=True, metavar="FILE", help="Training data (.jsonl/.csv/.tsv/.txt; globs; repeatable). "
                                                          "Extra FILES arguments are added to it."),
        O(["--eval-data"], multiple=True, metavar="FILE", help="Held-out data, evaluated after each epoch."),
        O(["-o", "--output"], required=True, metavar="DIR", help="Folder for the adapter (or model, with --full)."),
        O(["-m", "--model"], metavar="SPEC", help=f"Base model [default: {task.default_model}]."),
        O(["--objective"], type=click.Choice(["task", "lm"]), default="task", show_default=True,
          help="task: the task's examples; lm: continued pre-training on raw text."),
        O(["--epochs"], type=int, default=3, show_default=True),
        O(["--max-steps"], type=int, help="Stop after this many optimizer steps."),
        O(["--batch-size"], type=int, default=8, show_default=True, help="Examples per process per micro-batch."),
        O(["--grad-accum"], type=int, default=1, show_default=True, help="Micro-batches per optimizer step."),
        O(["--lr"], type=float, default=2e-4, show_default=True, help="Peak learning rate."),
        O(["--warmup-ratio"], type=float, default=0.06, show_default=True),
        O(["--weight-decay"], type=float, default=0.0, show_default=True),
        O(["--max-grad-norm"], type=float, default=1.0, show_default=True, help="Gradient clipping; 0 turns it off."),
        O(["--full"], is_flag=True, help="Train every weight instead of a LoRA adapter."),
        O(["--lora-r"], type=int, default=8, show_default=True),
        O(["--lora-alpha"], type=int, default=16, show_default=True),
        O(["--lora-dropout"], type=float, default=0.05, show_default=True),
        O(["--target-modules"], metavar="A,B", help="Modules LoRA adapts [default: the architecture's preset]."),
        O(["--max-length"], type=int, default=512, show_default=True, help="Most tokens per example (block size for lm)."),
        O(["--seed"], type=int, default=0, show_default=True),
        O(["--save-every"], type=int, default=50, show_default=True, help="Steps between checkpoints; 0: none."),
        O(["--gradient-checkpointing"], is_flag=True, help="Trade compute for memory."),
        O(["--group-by-length"], is_flag=True, help="Batch examples of similar length (less padding on ragged data)."),
        O(["--resume"], is_flag=True, help="Continue an interrupted run from its last checkpoint."),
        O(["--overwrite"], is_flag=True, help="Replace an existing --output."),
        O(["--text-column"], metavar="NAME", help=f"Column holding the {task.input_fields[0]!r} input."),
        O(["--label-column", "--target-column", "target_column"], metavar="NAME",
          help=f"Column holding the target ({', '.join(task.target_fields) or '-'})."),
        O(["--columns"], metavar="FIELD=COL,...", help="Map task fields to columns."),
        O(["--device"], default="auto", show_default=True),
        O(["--dtype"], default="auto", show_default=True, type=click.Choice(DTYPES),
          help="The weights train in float32 (LoRA and --full alike), so only auto and float32 are accepted; "
               "on a GPU with bfloat16 the forward pass already runs under bfloat16 autocast."),
        O(["--no-progress"], is_flag=True, help="No progress bar."),
        O(["--json", "as_json"], is_flag=True, help="Print the adapter's manifest as JSON."),
    ] + task_option_params(task, training=True)


def train_task(task: TaskKind, task_file: TaskFile | None, **kw: Any) -> None:
    from .. import api
    from ..runtime.records import parse_columns
    from ..training.config import TrainConfig
    from ..training.trainer import train
    from .main import STATE

    if task_file is not None:
        lora = task_file.lora
        targets = lora.get("target_modules")
        declared.from_file(kw, task_file, {
            "data": None if kw["more_data"] else (lambda: (declared.data(task_file, "train"),)),
            "eval_data": (lambda: (declared.data(task_file, "eval"),)) if "eval" in task_file.data else None,
            "model": task_file.model, "lora_r": lora.get("r"), "lora_alpha": lora.get("alpha"),
            "lora_dropout": lora.get("dropout"),
            "target_modules": ",".join(targets) if isinstance(targets, list) else targets,
            **{k: v for k, v in declared.option_defaults(task_file).items() if k in kw}})
    if kw["dtype"] not in ("auto", "float32"):
        raise NlpappError(f"--dtype {kw['dtype']}: training keeps its weights in float32 (on a GPU with bfloat16 "
                          "the forward pass already runs in bfloat16 autocast); use --dtype auto or float32")
    options = pop_task_options(task, kw, training=True)
    columns = declared.columns(task_file, parse_columns(kw["columns"]))
    if kw["text_column"]:
        columns[task.input_fields[0]] = kw["text_column"]
    if kw["target_column"] and task.target_fields:
        columns[task.target_fields[0]] = kw["target_column"]
    config = TrainConfig(
        task=task.name, model=kw["model"] or task.default_model, data=[*kw["data"], *kw["more_data"]],
        output=kw["output"], eval_data=list(kw["eval_data"]), objective=kw["objective"], epochs=kw["epochs"],
        max_steps=kw["max_steps"], batch_size=kw["batch_size"], grad_accum=kw["grad_accum"], lr=kw["lr"],
        warmup_ratio=kw["warmup_ratio"], weight_decay=kw["weight_decay"], max_grad_norm=kw["max_grad_norm"],
        full=kw["full"], lora_r=kw["lora_r"], lora_alpha=kw["lora_alpha"], lora_dropout=kw["lora_dropout"],
        target_modules=[m.strip() for m in kw["target_modules"].split(",")] if kw["target_modules"] else None,
        max_length=kw["max_length"], seed=kw["seed"], save_every=kw["save_every"],
        gradient_checkpointing=kw["gradient_checkpointing"], group_by_length=kw["group_by_length"],
        options=options, columns=columns)
    runtime = api.Runtime(STATE.plugins, LoadOptions(device=kw["device"], dtype="float32"))
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one process reports
    with (runs.recording("train", task.name, config.as_dict(), config.data + config.eval_data) if main_process
          else contextlib.nullcontext()) as record:
        manifest = train(runtime, config, resume=kw["resume"], overwrite=kw["overwrite"],
                         load_options=runtime.load_options, show_progress=not kw["no_progress"])
        if record is not None:
            record.metrics = manifest["metrics"]
            record.extra = {"model": manifest["base_model"], "adapter": {"output": config.output,
                                                                         "kind": manifest["kind"]}}
    if not main_process:
        return
    if kw["as_json"]:
        click.echo(json.dumps({**manifest, "run": record.id, "report": str(record.report) if record.report else None},
                              indent=2))
        return
    metrics = manifest["metrics"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
    click.echo(f"wrote {manifest['kind']} adapter to {config.output} ({metrics['steps']} steps; {shown})")
    if record.report:
        click.echo(f"report: {record.report}")


class TrainGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return declared.names(trainable_only=True)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        task, task_file = declared.resolve(name)
        about = f"Fine-tune a model for {task.name!r}: each example gives {', '.join(task.input_fields)} and " \
                f"{', '.join(task.target_fields)}." + (f" Defaults from task file {task_file.path.name}." if task_file else "")
        return click.Command(name, params=_params(task), help=about,
                             callback=lambda **kw: train_task(task, task_file, **kw))


train = TrainGroup("train", help="Fine-tune a model with LoRA (or fully) for a task.")
