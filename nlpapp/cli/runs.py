"""``nlpapp runs``: list, show and diff run records."""

from __future__ import annotations

import json

import click


@click.group()
def runs() -> None:
    """Records of past run, train and eval commands (in $NLPAPP_HOME/runs)."""


@runs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_runs(as_json: bool) -> None:
    """List runs, oldest first: id, kind, task, status, seconds, headline scores."""
    from .. import runs as records

    rows = records.all_runs()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        scores = ", ".join(f"{k} {v['value']:.2f}" for k, v in list((r.get("metrics") or {}).items())[:3]
                           if isinstance(v, dict) and "value" in v)
        click.echo(f"{r['id']}  {r['kind']:<5} {r['task']:<14} {r['status']:<9} {r['seconds']:>8.1f}s  {scores}")


@runs.command()
@click.argument("run_id")
def show(run_id: str) -> None:
    """Print one run's record."""
    from .. import runs as records

    click.echo(json.dumps(records.load(run_id), indent=2, ensure_ascii=False))


@runs.command()
@click.argument("run_id")
@click.option("--markdown", is_flag=True, help="Print the Markdown report instead of the HTML report's path.")
def report(run_id: str, markdown: bool) -> None:
    """Write (again) a run's report.html and report.md, and print where."""
    from .. import reports, runs as records
    from ..errors import NlpappError

    records.load(run_id)  # an unknown id fails here, with a did-you-mean
    path = records.write_report(records.runs_dir() / run_id)
    if path is None:
        raise NlpappError(f"could not write the report of run {run_id} (see the warning above)")
    click.echo((path.parent / reports.MARKDOWN).read_text() if markdown else str(path))


@runs.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diff(run_a: str, run_b: str, as_json: bool) -> None:
    """Which inputs differ between two runs, and how their scores differ."""
    from .. import runs as records

    report = records.diff(records.load(run_a), records.load(run_b))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"{run_a} -> {run_b}")
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
