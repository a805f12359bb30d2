"""``nlpapp eval TASK``: score a task on labelled data, with bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..declarative import TaskFile
from ..errors import NlpappError
from ..task import TaskKind
from ..types import LoadOptions
from .. import runs
from . import declared
from .run import DTYPES, check_writable, pop_task_options, record_config, task_option_params


def _params(task: TaskKind, task_file: TaskFile | None) -> list[click.Parameter]:
    O = click.Option
    metrics = (task_file.metrics if task_file else None) or task.metrics
    return [
        O(["--data"], required=task_file is None, metavar="FILE|DATASET",
          help="Labelled examples: a .jsonl/.csv/.tsv file or a registered dataset (nlpapp datasets); .txt for perplexity."),
        O(["-m", "--model"], metavar="SPEC", help=f"Model [default: {(task_file.model if task_file else None) or task.default_model}, or the adapter's base]."),
        O(["-a", "--adapter"], metavar="NAME|DIR", help="Evaluate with this adapter."),
        O(["--metric", "metric_names"], multiple=True,
          help=f"Registered metric (repeatable) [default: {', '.join(metrics) or '-'}]; 'perplexity' on raw text."),
        O(["--compare"], metavar="A,B", help="Two systems on the same examples: 'base', an adapter, or a model."),
        O(["--bootstrap", "rounds"], type=int, default=1000, show_default=True, help="Resamples for intervals; 0: none."),
        O(["--bootstrap-seed"], type=int, default=0, show_default=True, help="Seed of the resampling."),
        O(["--text-column"], metavar="NAME"),
        O(["--target-column", "--label-column", "target_column"], metavar="NAME",
          help=f"Column of the reference ({', '.join(task.target_fields) or '-'})."),
        O(["--columns"], metavar="FIELD=COL,..."),
        O(["--limit"], type=click.IntRange(min=1), metavar="N", help="Evaluate the first N examples only."),
        O(["-o", "--output", "output_path"], metavar="FILE",
          help="Write the predictions as JSONL (with each example's other columns, e.g. its id); "
               "FILE is replaced only when the evaluation succeeds."),
        O(["--batch-size"], type=int, default=8, show_default=True),
        O(["--device"], default="auto", show_default=True),
        O(["--dtype"], default="auto", show_default=True, type=click.Choice(DTYPES)),
        O(["--json", "as_json"], is_flag=True, help="Print the full report (with predictions) as JSON."),
    ] + task_option_params(task)


def eval_task(task: TaskKind, task_file: TaskFile | None, **kw: Any) -> None:
    from .. import api
    from ..evaluation.evaluate import compare, evaluate
    from ..runtime.records import parse_columns
    from .main import STATE

    if task_file is not None:
        declared.from_file(kw, task_file, {"data": lambda: declared.data(task_file, "eval"), "model": task_file.model,
                                           "metric_names": tuple(task_file.metrics) or None,
                                           **declared.option_defaults(task_file)})
    options = pop_task_options(task, kw)
    columns = declared.columns(task_file, parse_columns(kw["columns"]))
    if kw["text_column"]:
        columns[task.input_fields[0]] = kw["text_column"]
    if kw["target_column"] and task.target_fields:
        columns[task.target_fields[0]] = kw["target_column"]
    output_path = Path(kw["output_path"]) if kw["output_path"] else None
    if output_path is not None:
        if kw["compare"] or list(kw["metric_names"]) == ["perplexity"]:
            raise NlpappError("--output writes one system's predictions; it does not go with "
                              + ("--compare" if kw["compare"] else "--metric perplexity (no predictions)"))
        check_writable(output_path)
    runtime = api.Runtime(STATE.plugins, LoadOptions(device=kw["device"], dtype=kw["dtype"]))
    common = dict(metrics=list(kw["metric_names"]) or None, columns=columns, options=options,
                  batch_size=kw["batch_size"], rounds=kw["rounds"], seed=kw["bootstrap_seed"], limit=kw["limit"])
    config = record_config(kw, options, columns, task_file)
    with runs.recording("eval", task.name, config, [kw["data"]]) as record:
        if kw["compare"]:
            report = compare(runtime, task.name, kw["data"], kw["compare"].split(","), model=kw["model"], **common)
            record.metrics = {f"{s['system']}:{name}": v for s in report["systems"] for name, v in s["scores"].items()}
            record.extra = {"examples": report["examples"], "paired_p_values": report["paired_p_values"],
                            "device": runtime.load_options.device}
        else:
            report = evaluate(runtime, task.name, kw["data"], model=kw["model"], adapter=kw["adapter"], **common)
            record.metrics = report["scores"]
            record.extra = {**runs.model_identity(runtime.models, report["model"], kw["adapter"]),
                            "examples": report["examples"], "device": runtime.load_options.device}
            record.save_predictions(report.get("predictions", []))
            if output_path is not None:
                _write_predictions(output_path, report["predictions"])
    if output_path is not None:
        click.echo(f"nlpapp: wrote {report['examples']} predictions to {output_path}", err=True)
    report["run"] = record.id
    report["report"] = str(record.report) if record.report else None
    if kw["as_json"]:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    click.echo(render(report))
    if record.report:
        click.echo(f"report: {record.report}")


def _write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    from ..runtime.atomic import atomic_file

    with atomic_file(path) as handle:  # whole or not at all
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _rows(scores: dict[str, dict[str, Any]]) -> list[str]:
    """One line per score, then each distinct signature once."""
    lines = [f"{'score':<12} {'value':>8}  95% interval"]
    for name, s in scores.items():
        ci = f"[{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]" if s["ci95"] else "-"
        lines.append(f"{name:<12} {s['value']:>8.2f}  {ci}")
    lines += [f"signature: {sig}" for sig in dict.fromkeys(s["signature"] for s in scores.values())]
    return lines


def render(report: dict[str, Any]) -> str:
    lines = [f"{report['task']} on {report['data']}: {report['examples']} examples"]
    if "systems" in report:
        for system in report["systems"]:
            lines.append(f"\n{system['system']}")
            lines += _rows(system["scores"])
        lines.append("\npaired bootstrap p-values (the better system better by chance):")
        lines += [f"{name:<12} p = {p:.4f}" for name, p in report["paired_p_values"].items()]
        return "\n".join(lines)
    lines.append(f"model {report['model']}" + (f", adapter {report['adapter']}" if report["adapter"] else ""))
    lines += _rows(report["scores"])
    if report.get("confusion"):
        lines.append("confusion (gold -> predicted: count): " + "; ".join(
            f"{g} -> " + ", ".join(f"{p}: {n}" for p, n in sorted(row.items()))
            for g, row in sorted(report["confusion"].items())))
    return "\n".join(lines)


class EvalGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return declared.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        task, task_file = declared.resolve(name)
        about = f"{task_file.description} (task file {task_file.path.name}, kind {task.name})" if task_file else \
            f"Score {task.name!r} on labelled data with {', '.join(task.metrics) or 'a metric'}."
        return click.Command(name, params=_params(task, task_file), help=about,
                             callback=lambda **kw: eval_task(task, task_file, **kw))


eval_command = EvalGroup("eval", help="Evaluate a task on labelled data, with bootstrap intervals.")
