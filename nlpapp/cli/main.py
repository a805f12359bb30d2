"""``nlpapp``: the root command group and the error boundary.

Start-up imports only click, pluggy and the plugins' light modules; torch and
transformers load inside the commands that run a model."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from .. import __version__, log
from ..errors import NlpappError
from ..plugins import strict_mode
from .render import echo_json, table as _table
from .state import CliState, state
from .adapters import adapters
from .eval import eval_command
from .plugins import plugins
from .run import run
from .runs import runs
from .scaffold import new_plugin
from .optimize import optimize
from .serve import serve
from .train import train


class RootGroup(click.Group):
    """The ``nlpapp`` group. Plugins may add commands lazily: listed in ``--help`` by name and
    help text, imported only when run (``add_lazy_command``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}  # name -> (module:attribute, short help)

    def add_lazy_command(self, name: str, import_path: str, help: str) -> None:
        """Add command ``name``, the click command at ``import_path`` (``package.module:attribute``)."""
        if ":" not in import_path:
            raise NlpappError(f"lazy command {name!r}: import path {import_path!r} is not 'module:attribute'")
        self.lazy[name] = (import_path, help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            import importlib

            module, _, attribute = self.lazy[name][0].partition(":")
            self.commands[name] = getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Help for lazy commands comes from their registration, so --help imports nothing."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))  # as click computes it
        rows = []
        for name in names:
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nlpapp")
@click.option("--strict-plugins", is_flag=True,
              help="Make any plugin problem fatal: a load failure, a version misfit, a name conflict, a slow "
                   "or failing hook (also NLPAPP_STRICT_PLUGINS=1).")
def cli(strict_plugins: bool) -> None:
    """Run NLP tasks on pretrained Transformers; every task comes from a plugin."""
    # --strict-plugins is acted on by main(), before parsing: plugins load before the arguments are read


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def tasks(as_json: bool) -> None:
    """List the task kinds, with their aliases, and the task files.

    Task kinds come from the installed plugins; task files (NAME.yaml) are found in
    $NLPAPP_TASKS, ./tasks and the folders plugins register, the first of a name winning."""
    registry = state().plugins.registries.tasks
    files = _task_files(state().plugins.registries)
    rows = [dict(task.describe(), plugin=registry.plugin_of(task.name),
                 task_files=[f for f in files if f["kind"] == task.name]) for task in registry]
    if as_json:
        return echo_json(rows)
    click.echo(_table([[r["name"], ", ".join(r["aliases"]) or "-", r["default_model"], r["plugin"], r["description"]]
                       for r in rows], ["TASK", "ALIASES", "DEFAULT MODEL", "PLUGIN", "DESCRIPTION"]))
    if files:
        click.echo("\n" + _table([[f["name"], f["kind"], f["default_model"], f["plugin"] or str(Path(f["path"]).parent),
                                   f["description"]] for f in files],
                                 ["TASK FILE", "KIND", "DEFAULT MODEL", "FROM", "DESCRIPTION"]))


def _task_files(registries: Any) -> list[dict[str, Any]]:
    """Each task file ``nlpapp run NAME`` would use, whose task kind is installed."""
    from .. import declarative

    plugin_of = {folder.path: registries.task_folders.plugin_of(folder.name) for folder in registries.task_folders}
    rows = []
    for name, path in declarative.files(list(plugin_of)):
        try:
            task_file = declarative.load(path)
        except NlpappError as exc:  # one broken file in ./tasks does not hide the others
            log.warn(str(exc))
            continue
        if task_file.kind in registries.tasks:
            kind = registries.tasks.get(task_file.kind)
            rows.append({"name": name, "kind": kind.name, "description": task_file.description or kind.description,
                         "default_model": task_file.model or kind.default_model, "path": str(path),
                         "plugin": plugin_of.get(str(path.parent))})
    return rows


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(as_json: bool) -> None:
    """List registered models (aliases usable with --model), with source and licence."""
    registries = state().plugins.registries
    defaults: dict[str, list[str]] = {}
    for task in registries.tasks:
        defaults.setdefault(task.default_model, []).append(task.name)
    rows = [{"name": p.name, "head": p.head, "description": p.description,
             "source": p.source, "license": p.license, "notes": p.notes,
             "default_for": sorted(defaults.get(p.name, [])),
             "plugin": registries.models.plugin_of(p.name)} for p in registries.models]
    if as_json:
        return echo_json(rows)
    for row in rows:
        click.echo(f"{row['name']}  ({row['head']} head; default for: {', '.join(row['default_for']) or '-'})")
        click.echo(f"    {row['description']}")
        click.echo(f"    source: {row['source']}; licence: {row['license']}")
        if row["notes"]:
            click.echo(f"    note: {row['notes']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datasets(as_json: bool) -> None:
    """List registered datasets (usable as --data NAME or --input NAME)."""
    from ..datasets import describe

    rows = describe(state().plugins.registries)
    if as_json:
        return echo_json(rows)
    click.echo(_table([[r["name"], r["task"], r["plugin"], r["description"]] for r in rows],
                      ["DATASET", "TASK", "PLUGIN", "DESCRIPTION"]))


def _register_plugin_commands(current: CliState, strict: bool = False) -> None:
    """Let each plugin add its commands (after removing any an earlier call added, so
    in-process callers start clean); one that fails is named and skipped. A plugin may only
    add: one that replaces or removes a built-in command or another plugin's has that change
    undone and is reported, so it cannot take over ``nlpapp train``, say. Each call is timed.

    :raises PluginError: with ``strict``, a plugin that failed, was slow or overstepped."""
    from ..plugins import fail_if_strict, record_time, slow_limit

    for name in set(cli.commands) - BUILTIN_COMMANDS:
        del cli.commands[name]
    cli.lazy.clear()
    limit, problems = slow_limit(), []
    warn = (lambda message: None) if strict else log.warn  # strict: the one error line says it
    for impl in current.plugins.hook.register_commands.get_hookimpls():
        plugin = impl.plugin_name
        commands, lazy = dict(cli.commands), dict(cli.lazy)
        started = time.perf_counter()
        try:
            impl.function(cli=cli)
        except Exception as exc:
            problems.append(f"plugin {plugin!r} could not add its commands: {type(exc).__name__}: {exc}")
            warn(problems[-1])
        finally:
            info = current.plugins.plugins[plugin]
            slow = len(info.slow)
            record_time(info, "register_commands", time.perf_counter() - started, limit, warn)
            problems += [f"plugin {plugin!r}: is slow: {what}" for what in info.slow[slow:]]
        taken = sorted(n for n in {*commands, *lazy}
                       if cli.commands.get(n) is not commands.get(n) or cli.lazy.get(n) != lazy.get(n))
        if taken:  # put back what was there before this plugin's call
            cli.commands.clear()
            cli.commands.update(commands)
            cli.lazy.clear()
            cli.lazy.update(lazy)
            message = (f"tried to replace or remove the command(s) {', '.join(taken)}; its commands are not added "
                       "(a plugin may only add commands of new names)")
            current.plugins.plugins[plugin].conflicts.append(message)  # for nlpapp plugins doctor
            problems.append(f"plugin {plugin!r} {message}")
            warn(problems[-1])
    fail_if_strict(problems, strict)


cli.add_command(run)
cli.add_command(plugins)
cli.add_command(new_plugin)
cli.add_command(adapters)
cli.add_command(eval_command)
cli.add_command(runs)
cli.add_command(train)
cli.add_command(serve)
cli.add_command(optimize)
BUILTIN_COMMANDS = frozenset(cli.commands)


def _show_click_error(exc: click.ClickException) -> None:
    """``nlpapp: error: ...`` like every other error; a usage error keeps click's pointer to --help."""
    message = exc.format_message()
    if message[:1].isupper() and message[1:2].islower():  # "No such option '--x'." -> "no such option '--x'"
        message = message[0].lower() + message[1:]
    if message.endswith(".") and not message.endswith(".."):
        message = message[:-1]
    click.echo(f"nlpapp: error: {message}", err=True)
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        option = max(ctx.command.get_help_option_names(ctx), key=len)
        click.echo(f"Try '{ctx.command_path} {option}' for help.", err=True)


def _global_flags(args: list[str]) -> tuple[bool, str | None]:
    """``--strict-plugins`` given before the command, and the command's name (read before
    click parses: the plugins, which may add commands, load first)."""
    strict = False
    for arg in args:
        if arg == "--strict-plugins":
            strict = True
        elif not arg.startswith("-"):
            return strict, arg
    return strict, None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code; user errors print one line, not a traceback.

    ``--strict-plugins`` sets ``NLPAPP_STRICT_PLUGINS=1`` for the invocation (so training
    workers it starts inherit it); ``nlpapp plugins ...`` loads plugins leniently even then,
    so a broken plugin can still be diagnosed and removed."""
    from ..plugins import STRICT_ENV

    args = sys.argv[1:] if argv is None else list(argv)
    strict, command = _global_flags(args)
    before = os.environ.get(STRICT_ENV)
    if strict:
        os.environ[STRICT_ENV] = "1"
    try:
        return _main(args, command)
    finally:
        if strict and before is None:  # an in-process caller's environment is left as it was
            del os.environ[STRICT_ENV]
        elif strict:
            os.environ[STRICT_ENV] = before


def _main(args: list[str], command: str | None) -> int:
    from ..plugins import load_plugins

    current = CliState()  # a fresh invocation: plugins loaded anew, on first use
    lenient = command == "plugins"  # diagnosing and removing a broken plugin works in strict mode too
    try:
        if lenient:
            current._plugins = load_plugins(strict=False)  # loaded here, as CliState would, but lenient
        _register_plugin_commands(current, strict_mode() and not lenient)
        code = cli.main(args=args, prog_name="nlpapp", standalone_mode=False, obj=current)
    except NlpappError as exc:
        click.echo(f"nlpapp: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("nlpapp: aborted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, as click shows it
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:  # usage errors too (exit 2), in nlpapp's format
        _show_click_error(exc)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        click.echo("nlpapp: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0  # a command's ctx.exit(N)
