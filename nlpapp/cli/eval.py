"""``nlpapp eval TASK``: score a task on labelled data, with bootstrap intervals. Options
come from ``EvalConfig``'s fields; the command builds the config and calls
``Runtime.evaluate`` (or ``Runtime.compare``)."""

from __future__ import annotations

from typing import Any

import click

from ..configs import CompareConfig, EvalConfig
from ..declarative import TaskFile
from ..task import TaskKind
from . import declared
from .common import columns_from, device_options, load_settings, pop_task_options, task_option_params, trust_options
from .params import config_options, config_values
from .render import echo_json
from .state import state


def _params(task: TaskKind, task_file: TaskFile | None) -> list[click.Parameter]:
    O = click.Option
    return [
        *config_options(EvalConfig),
        O(["--compare"], metavar="A,B", help="Two systems on the same examples: 'base', an adapter, or a model."),
        O(["--text-column"], metavar="NAME", help=f"Column holding the {task.input_fields[0]!r} input."),
        O(["--target-column", "--label-column", "target_column"], metavar="NAME",
          help=f"Column of the reference ({', '.join(task.target_fields) or '-'})."),
        O(["--columns"], metavar="FIELD=COL,...", help="Map task fields to columns."),
        *device_options(),
        O(["--json", "as_json"], is_flag=True, help="Print the full result (with predictions) as JSON."),
        *trust_options(),
    ] + task_option_params(task)


def eval_task(task: TaskKind, task_file: TaskFile | None, **kw: Any) -> None:
    if task_file is not None:
        declared.from_file(kw, task_file, {"data": lambda: declared.data(task_file, "eval"), "model": task_file.model,
                                           "metrics": tuple(task_file.metrics) or None})
    options = pop_task_options(task, kw, file_options=declared.file_options(task_file))
    settings = {**config_values(EvalConfig, kw), "task": task.name, "options": options,
                "columns": columns_from(task, task_file, kw), "task_file": str(task_file.path) if task_file else None}
    runtime = state().runtime(**load_settings(kw))
    if kw["compare"]:
        result = runtime.compare(CompareConfig(**settings, systems=kw["compare"].split(",")))
    else:
        result = runtime.evaluate(EvalConfig(**settings))
        if result.predictions and settings.get("output"):
            click.echo(f"nlpapp: wrote {result.examples} predictions to {settings['output']}", err=True)
    report = result.as_dict()
    if kw["as_json"]:
        return echo_json(report)
    click.echo(render(report))
    if result.report:
        click.echo(f"report: {result.report}")


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
