"""``nlpapp train TASK``: LoRA (or full) fine-tuning, one subcommand per trainable task.
Options come from ``TrainConfig``'s fields; the command builds the config and calls
``Runtime.train``.

Runs the same under ``torchrun --nproc-per-node N -m nlpapp train ...`` or
``accelerate launch -m nlpapp train ...`` (DDP)."""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from typing import Any

import click

from ..declarative import TaskFile
from ..errors import NlpappError
from ..task import TaskKind
from ..training.config import TrainConfig
from ..training.selection import verdict_line
from . import declared
from .common import columns_from, pop_task_options, task_option_params, trust_options, trust_settings
from .params import config_options, config_values
from .render import echo_json
from .state import state


# a task option of the same name as a training setting (a sampling --seed) is left to the setting
TRAIN_SETTINGS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def _params(task: TaskKind) -> list[click.Parameter]:
    O = click.Option
    return [
        click.Argument(["more_data"], nargs=-1, metavar="[FILES]..."),
        O(["--config", "config_file"], metavar="FILE", help="Settings from a YAML or TOML file, keyed by the option "
                                                           "names (lora_r: 16; all but output); options given here "
                                                           "override it."),
        *config_options(TrainConfig),
        O(["--resume"], is_flag=True, help="Continue an interrupted run from its last checkpoint; refused (naming "
                                           "what changed) if the options, the data's content or the base model "
                                           "differ from that run's."),
        O(["--overwrite"], is_flag=True, help="Replace an existing --output."),
        O(["--require-improvement"], is_flag=True, help="Exit 1 unless the adapter beats the base on the held-out "
                                                          "examples (the 95% interval of the gain excludes 0); the "
                                                          "adapter is written either way."),
        O(["--text-column"], metavar="NAME", help=f"Column holding the {task.input_fields[0]!r} input."),
        O(["--label-column", "--target-column", "target_column"], metavar="NAME",
          help=f"Column holding the target ({', '.join(task.target_fields) or '-'})."),
        O(["--columns"], metavar="FIELD=COL,...", help="Map task fields to columns."),
        O(["--device"], default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        O(["--dtype"], default="auto", show_default=True, type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
          help="The weights train in float32 (LoRA and --full alike); bf16 compute is --mixed-precision, "
               "which float32 turns off unless given."),
        *trust_options(),
        O(["--no-progress"], is_flag=True, help="No progress bar."),
        O(["--json", "as_json"], is_flag=True, help="Print the adapter's manifest, run id and scores as JSON."),
    ] + task_option_params(task, skip=TRAIN_SETTINGS)  # decoding too: the held-out evaluation generates with them


def train_task(task: TaskKind, task_file: TaskFile | None, **kw: Any) -> None:
    if task_file is not None:
        lora = task_file.lora
        declared.from_file(kw, task_file, {
            "data": None if kw["more_data"] else (lambda: (declared.data(task_file, "train"),)),
            "eval_data": (lambda: (declared.data(task_file, "eval"),)) if "eval" in task_file.data else None,
            "model": task_file.model, "lora_r": lora.get("r"), "lora_alpha": lora.get("alpha"),
            "lora_dropout": lora.get("dropout"), "target_modules": lora.get("target_modules")})
    options = pop_task_options(task, kw, file_options=declared.file_options(task_file), skip=TRAIN_SETTINGS)
    given = config_values(TrainConfig, kw)
    given["data"] = [*given.get("data", []), *kw["more_data"]]
    settings = {"data": [], **_config_file(kw["config_file"]), **{k: v for k, v in given.items() if v != []}}
    config = TrainConfig(**{"model": task.default_model, **settings, "task": task.name, "options": options,
                            "columns": columns_from(task, task_file, kw)})
    if kw["dtype"] not in ("auto", "float32"):
        raise NlpappError(f"--dtype {kw['dtype']}: training keeps its weights in float32; use --dtype auto or "
                          "float32, and --mixed-precision bf16 to compute in bf16")
    if kw["dtype"] == "float32" and "mixed_precision" not in settings:  # asked for float32: no bf16 compute
        config = dataclasses.replace(config, mixed_precision="no")
    if kw["require_improvement"] and not config.eval_data and config.holdout == 0:
        raise NlpappError("--require-improvement needs held-out examples: pass --eval-data or keep --holdout above 0")
    runtime = state().runtime(device=kw["device"], dtype="float32", **trust_settings(kw))
    result = runtime.train(config, resume=kw["resume"], overwrite=kw["overwrite"], progress=not kw["no_progress"])
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, one process reports
        return
    if kw["as_json"]:
        echo_json(result.as_dict())
    else:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in result.scores.items() if isinstance(v, float))
        click.echo(f"wrote {result.manifest['kind']} adapter to {config.output} ({result.scores['steps']} steps; "
                   f"{shown})")
        if result.verdict:
            click.echo(verdict_line(result.verdict))
        if result.report:
            click.echo(f"report: {result.report}")
    if kw["require_improvement"] and not (result.verdict and result.verdict["improved"]):
        raise NlpappError("--require-improvement: the adapter is not measurably better than the base on the "
                          f"held-out examples: {verdict_line(result.verdict).split(': ', 1)[1].split(';')[0]}" if result.verdict else
                          "--require-improvement needs held-out examples scored by a task metric; this run had none")


def _config_file(path: str | None) -> dict[str, Any]:
    """Training settings from a YAML or TOML file (the shape axolotl and LLaMA-Factory users
    know): TrainConfig field names, checked with a did-you-mean."""
    if path is None:
        return {}

    from .. import declarative

    raw = declarative.read_mapping(Path(path))
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("cli") and f.name != "output"]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the settings are: {', '.join(names)}"
            raise NlpappError(f"--config {path}: unknown setting {key!r}; {hint}")
    return {key: _typed(path, key, value) for key, value in raw.items()}


def _typed(path: str, key: str, value: Any) -> Any:
    """A config file's value as its field's type. YAML reads ``2e-3`` as text, so a number
    written that way is taken as the number it says; anything else of the wrong type is an
    error naming the setting."""
    import typing

    from .params import field_type

    kind = field_type(TrainConfig, key)
    if typing.get_origin(kind) is list:
        value = [value] if isinstance(value, str) else value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif typing.get_origin(kind) is dict and isinstance(value, (dict, str)):
        return value  # a mapping (label_map): TrainConfig parses and checks it
    elif kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif kind is bool and isinstance(value, bool) or kind is int and isinstance(value, int) and not isinstance(
            value, bool) or kind is str and isinstance(value, str):
        return value
    wanted = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(kind, "a list of text")
    raise NlpappError(f"--config {path}: {key} must be {wanted}, got {value!r}")


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
