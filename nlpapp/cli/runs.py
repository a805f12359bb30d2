"""``nlpapp runs``: list, show, diff, report and remove run records."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from ..runs import STATUSES
from .render import confirm

import click

KINDS = ("run", "train", "eval", "optimize")
CELL_CHARS = 24  # longer names are cut in the list: it is for finding a run, `show` has the rest
LISTED = 5  # a confirmation names this many runs, then a count


@click.group()
def runs() -> None:
    """Records of past run, train and eval commands (in $NLPAPP_HOME/runs).

    A RUN is named by its id, by 'latest' (the newest run), or, as git takes commit hashes,
    by any prefix or suffix of an id that only one run has."""


def _short(name: Any) -> str:
    """A path's last component (a hub id's name), cut to the column's width."""
    if not name:
        return "-"
    text = str(name).rstrip("/\\")
    text = PurePath(text).name or text
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…"


def _scores(metrics: dict[str, Any]) -> str:
    """The first three scores: a metric's value, or a training run's loss."""
    shown = []
    for name, value in metrics.items():
        if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
            shown.append(f"{name} {value['value']:.2f}")
        elif isinstance(value, float):
            shown.append(f"{name} {value:.4g}")
    return ", ".join(shown[:3])


@runs.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only runs of this command.")
@click.option("--task", metavar="NAME", help="Only runs of this task.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs in this state.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N (after the filters).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_runs(kind: str | None, task: str | None, status: str | None, limit: int | None, as_json: bool) -> None:
    """List runs, oldest first, with what each used and scored.

    Columns: id, kind, task, status, seconds, model, adapter, data (a path by its last
    component) and the first scores; --json prints the whole records."""
    from .. import runs as records
    from .render import table as _table

    everything = records.all_runs()
    if task is not None:  # a task's old name and its new one mean the same runs
        from .state import state

        same_task = state().plugins.registries.tasks.canonical
        task = same_task(task)
    rows = [r for r in everything if (kind is None or r.get("kind") == kind)
            and (task is None or same_task(r.get("task") or "") == task)
            and (status is None or r.get("status") == status)]
    if limit is not None:
        rows = rows[-limit:]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no run matches ({len(everything)} recorded)" if everything else
                   f"no runs recorded yet (in {records.runs_dir()})")
        return
    table = []
    for r in rows:
        inputs = records.used(r)
        seconds = r.get("seconds")
        table.append([r["id"], r.get("kind", "-"), r.get("task", "-"), r.get("status", "-"),
                      f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "-",
                      _short(inputs["model"]), _short(inputs["adapter"]),
                      ", ".join(_short(d) for d in inputs["data"]) or "-", _scores(r.get("metrics") or {})])
    click.echo(_table(table, ["ID", "KIND", "TASK", "STATUS", "SECONDS", "MODEL", "ADAPTER", "DATA", "SCORES"]))


@runs.command()
@click.argument("run_id", metavar="RUN")
def show(run_id: str) -> None:
    """Print one run's record."""
    from .. import runs as records

    click.echo(json.dumps(records.load(run_id), indent=2, ensure_ascii=False))


@runs.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--markdown", is_flag=True, help="Print the Markdown report instead of the HTML report's path.")
def report(run_ref: str, markdown: bool) -> None:
    """Write (again) a run's report.html and report.md, and print where."""
    from .. import reports, runs as records
    from ..errors import NlpappError

    run_id = records.resolve(run_ref)  # an unknown or ambiguous name fails here, in one line
    path = records.write_report(records.runs_dir() / run_id)
    if path is None:
        raise NlpappError(f"could not write the report of run {run_id} (see the warning above)")
    click.echo((path.parent / reports.MARKDOWN).read_text() if markdown else str(path))


@runs.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diff(run_a: str, run_b: str, as_json: bool) -> None:
    """Which inputs differ between two runs, and how their scores differ."""
    from .. import runs as records

    report = records.diff(records.load(run_a), records.load(run_b))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"{report['a']} -> {report['b']}")
    click.echo("inputs that differ:" if report["inputs"] else "no recorded input differs")
    for key, (a, b) in ((k, v) for k, v in report["inputs"].items() if k != "note"):
        click.echo(f"  {key}: {a!r} -> {b!r}")
    if "note" in report["inputs"]:
        click.echo(f"  ({report['inputs']['note']})")
    if report["scores"]:
        click.echo("scores:")
    for name, s in report["scores"].items():
        if "difference" in s:
            click.echo(f"  {name}: {s['a']:.4g} -> {s['b']:.4g} ({s['difference']:+.4g})")
        elif "not_comparable" in s:
            click.echo(f"  {name}: not comparable, {s['not_comparable']}")
        else:
            click.echo(f"  {name}: {s['a']!r} -> {s['b']!r}")


@runs.command()
@click.argument("run_refs", metavar="[RUN]...", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Also remove every failed run.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(run_refs: tuple[str, ...], all_failed: bool, yes: bool) -> None:
    """Delete runs: their records, predictions and reports."""
    from .. import runs as records
    from ..errors import NlpappError

    if not run_refs and not all_failed:
        raise NlpappError("name the runs to remove (an id, 'latest', or a unique prefix or suffix), "
                          "or pass --all-failed")
    ids = [records.resolve(ref) for ref in run_refs]  # every name is checked before anything goes
    if all_failed:
        ids += [r["id"] for r in records.all_runs() if r.get("status") == "failed"]
    ids = list(dict.fromkeys(ids))
    if not ids:
        click.echo("no failed runs to remove")
        return
    if not yes:
        more = f" and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
        confirm(f"remove {len(ids)} run{'s' * (len(ids) > 1)} ({', '.join(ids[:LISTED])}{more})?")
    for run_id in ids:
        records.remove(run_id)
        click.echo(f"removed run {run_id}")
