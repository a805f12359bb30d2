"""``nlpapp``: the root command group and the error boundary.

Start-up imports only click, pluggy and the plugins' light modules; torch and
transformers load inside the commands that run a model."""

from __future__ import annotations

import json
from typing import Any

import click

from .. import __version__, log
from ..errors import NlpappError
from ..plugins import PluginSet, load_plugins
from .adapters import adapters
from .eval import eval_command
from .run import run
from .runs import runs
from .train import train


class State:
    """Per-invocation state: the plugins are loaded once, on first use."""

    def __init__(self) -> None:
        self._plugins: PluginSet | None = None

    @property
    def plugins(self) -> PluginSet:
        if self._plugins is None:
            self._plugins = load_plugins()
        return self._plugins


STATE = State()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nlpapp")
def cli() -> None:
    """Run NLP tasks on pretrained Transformers; every task comes from a plugin."""


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks(as_json: bool) -> None:
    """List the task kinds the installed plugins provide."""
    registry = STATE.plugins.registries.tasks
    rows = [dict(task.describe(), plugin=registry.plugin_of(task.name)) for task in registry]
    if as_json:
        return echo_json(rows)
    click.echo(_table([[r["name"], r["default_model"], r["plugin"], r["description"]] for r in rows],
                      ["TASK", "DEFAULT MODEL", "PLUGIN", "DESCRIPTION"]))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json: bool) -> None:
    """List registered models (aliases usable with --model), with source and licence."""
    registries = STATE.plugins.registries
    defaults: dict[str, list[str]] = {}
    for task in registries.tasks:
        defaults.setdefault(task.default_model, []).append(task.name)
    rows = [{"name": p.name, "family": str(p.family), "description": p.description,
             "source": p.source, "license": p.license, "notes": p.notes,
             "default_for": sorted(defaults.get(p.name, [])),
             "plugin": registries.models.plugin_of(p.name)} for p in registries.models]
    if as_json:
        return echo_json(rows)
    for row in rows:
        click.echo(f"{row['name']}  ({row['family']}; default for: {', '.join(row['default_for']) or '-'})")
        click.echo(f"    {row['description']}")
        click.echo(f"    source: {row['source']}; licence: {row['license']}")
        if row["notes"]:
            click.echo(f"    note: {row['notes']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datasets(as_json: bool) -> None:
    """List registered datasets (usable as --data NAME or --input NAME)."""
    from ..datasets import describe

    rows = describe(STATE.plugins.registries)
    if as_json:
        return echo_json(rows)
    click.echo(_table([[r["name"], r["task"], r["plugin"], r["description"]] for r in rows],
                      ["DATASET", "TASK", "PLUGIN", "DESCRIPTION"]))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List plugins: version, status, hooks and what each registered."""
    infos = [info.as_dict() for info in STATE.plugins.plugins.values()]
    if as_json:
        return echo_json(infos)
    rows = []
    for info in infos:
        what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info["registered"].items())
        status = info["status"] if not info["error"] else f"{info['status']}: {info['error']}"
        rows.append([info["name"], info["version"] or "-", status, what or "-"])
    click.echo(_table(rows, ["PLUGIN", "VERSION", "STATUS", "REGISTERED"]))


def _register_plugin_commands() -> None:
    """Let each plugin add its commands; one that fails is named and skipped."""
    for impl in STATE.plugins.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:
            log.warn(f"plugin {impl.plugin_name!r} could not add its commands: {type(exc).__name__}: {exc}")


cli.add_command(run)
cli.add_command(adapters)
cli.add_command(eval_command)
cli.add_command(runs)
cli.add_command(train)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; user errors print one line, not a traceback."""
    _register_plugin_commands()
    try:
        cli.main(args=argv, prog_name="nlpapp", standalone_mode=False)
    except NlpappError as exc:
        click.echo(f"nlpapp: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("nlpapp: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        click.echo("nlpapp: interrupted", err=True)
        return 130
    return 0
