"""``nlpapp plugins``: list, install, uninstall and diagnose plugins.

Install and uninstall run pip in this interpreter. They never load the installed plugins
in this process (an editable install is on ``sys.path`` only for new processes, and a
broken plugin must not stop its own removal); install checks the result in a fresh one."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from typing import Any

import click

from ..errors import NlpappError

SLOW_IMPORT_SECONDS = 0.2  # a plugin's import costs every nlpapp command this much


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="With no subcommand: list as JSON.")
@click.option("--all", "show_all", is_flag=True, help="With no subcommand: list every plugin.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List, install, uninstall and diagnose plugins (no subcommand: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_plugins, as_json=as_json, show_all=show_all)


def _infos(show_all: bool) -> list[dict[str, Any]]:
    from .state import state

    from ..plugins import CORE_PLUGIN

    return [info.as_dict() for info in state().plugins.plugins.values()
            if show_all or (info.status != "disabled" and info.name != CORE_PLUGIN)]


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Also the core plugin and disabled plugins.")
def list_plugins(as_json: bool = False, show_all: bool = False) -> None:
    """Plugins: version, status, import time, and what each registered (or why it failed)."""
    from .render import echo_json, table as _table

    infos = _infos(show_all)
    if as_json:
        return echo_json(infos)
    rows = []
    for info in infos:
        what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info["registered"].items())
        hooks = ",".join(h.removeprefix("register_") for h in info["hooks"]) or "-"
        rows.append([info["name"], info["version"] or "-", info["status"], f"{info['import_seconds']:.3f}s", hooks,
                     info["error"] or what or "-"])
    click.echo(_table(rows, ["PLUGIN", "VERSION", "STATUS", "IMPORT", "HOOKS", "REGISTERED / ERROR"]))


def _pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", *args]
    click.echo(f"nlpapp: running {' '.join(command[2:])}", err=True)
    if subprocess.run(command).returncode != 0:
        raise NlpappError(f"pip {args[0]} failed (its output is above)")


def _entry_point_names() -> dict[str, str]:
    """Plugin name -> distribution name, read from metadata without importing anything."""
    return {ep.name: ep.dist.name if ep.dist else "" for ep in metadata.entry_points(group="nlpapp")}


@plugins.command()
@click.argument("specs", nargs=-1)
@click.option("-e", "--editable", "editable", multiple=True, metavar="PATH", help="Install a folder in editable mode.")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade if already installed.")
@click.option("--no-deps", is_flag=True, help="Do not install the plugin's dependencies.")
def install(specs: tuple[str, ...], editable: tuple[str, ...], upgrade: bool, no_deps: bool) -> None:
    """Install plugins with pip into this interpreter: names, paths, or -e PATH."""
    if not specs and not editable:
        raise NlpappError("name a plugin to install, e.g. nlpapp plugins install nlpapp-foo (or a path, or -e PATH)")
    before = _entry_point_names()
    _pip(["install", *(["-U"] if upgrade else []), *(["--no-deps"] if no_deps else []),
          *[a for path in editable for a in ("-e", path)], *specs])
    # a fresh process sees the new distribution (and an editable install's path)
    out = subprocess.run([sys.executable, "-m", "nlpapp", "plugins", "list", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no error output"])[-1]
        raise NlpappError(f"installed, but nlpapp no longer starts: {last}")
    infos = {i["name"]: i for i in json.loads(out.stdout)}
    new = [i for name, i in infos.items() if name not in before] or [
        i for i in infos.values() if i["distribution"] and any(
            i["distribution"].lower().replace("_", "-") in s.lower().replace("_", "-") for s in specs + editable)]
    if not new:
        click.echo("nlpapp: installed; no new nlpapp plugin appeared (does its pyproject declare an "
                   "[project.entry-points.nlpapp] entry?)", err=True)
    broken = [i for i in new if i["status"] != "loaded"]
    for info in new:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in info["registered"].items()) or "nothing"
        click.echo(f"plugin {info['name']} {info['version']}: {info['status']}"
                   + (f": {info['error']}" if info["error"] else f" (registered {what})"))
    if broken:
        raise NlpappError("installed, but a plugin does not load; run nlpapp plugins doctor")


@plugins.command()
@click.argument("names", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall(names: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugins (by plugin or distribution name) with pip. Works while a plugin is broken."""
    by_plugin = _entry_point_names()
    distributions = [by_plugin.get(name) or name for name in names]
    _pip(["uninstall", *(["-y"] if yes else []), *distributions])


@plugins.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Why a plugin failed to load, slow or heavy imports or hooks, and name conflicts. Exit 1 on errors."""
    from ..plugins import strict_mode
    from .state import state

    findings = diagnose(state().plugins)
    if as_json:
        click.echo(json.dumps(findings, indent=2))
    elif not findings:
        from ..plugins import CORE_PLUGIN

        count = sum(1 for name in state().plugins.plugins if name != CORE_PLUGIN)
        click.echo(f"{count} plugins (and the core), no problems found")
    for f in [] if as_json else findings:
        click.echo(f"{f['level']:<7} {f['plugin']}: {f['message']}" + (f"\n        fix: {f['fix']}" if f["fix"] else ""))
    if any(f["level"] == "error" for f in findings) or (strict_mode() and state().plugins.problems()):
        ctx.exit(1)  # strict mode: what it would refuse (a conflict, a slow hook) fails the check too


def diagnose(plugin_set: Any) -> list[dict[str, str]]:
    """One finding per problem: level (error, warning, info), plugin, message, fix."""
    findings = []

    def add(level: str, plugin: str, message: str, fix: str = "") -> None:
        findings.append({"level": level, "plugin": plugin, "message": message, "fix": fix})

    for info in plugin_set.plugins.values():
        if info.status == "incompatible":
            add("error", info.name, info.error, "install a matching release, or nlpapp plugins uninstall "
                + info.name)
        elif info.status == "failed":
            add("error", info.name, info.error, _fix_for(info.error, info.name))
        if info.import_seconds > SLOW_IMPORT_SECONDS or any(w.startswith("import ") for w in info.slow):
            add("warning", info.name, f"its import takes {info.import_seconds:.2f} s, paid by every nlpapp command",
                "import heavy libraries inside the functions that need them")
        if info.heavy_imports:
            add("warning", info.name, f"importing it loads {', '.join(info.heavy_imports)}",
                "move those imports into the functions that run a model")
        for what in info.slow:
            if not what.startswith("import "):  # a slow import has its finding above
                add("warning", info.name, f"slow at load: its {what}, and every nlpapp command waits for it",
                    f"make the hook cheap (heavy work inside the functions that need it), or skip it: "
                    f"NLPAPP_DISABLE_PLUGINS={info.name}")
        for message in info.conflicts:
            if "replace or remove the command" in message:  # commands are add-only: no override lets it win
                add("warning", info.name, f"command take-over: {message}",
                    "give the plugin's commands names of their own, or uninstall it")
            else:
                add("warning", info.name, f"name conflict: {message}",
                    f"uninstall one of the two, or let this plugin win: NLPAPP_OVERRIDE_PLUGINS={info.name}")
        for message in info.overridden:
            add("info", info.name, f"overridden as asked: {message}")
        if "register_adapters" in info.hooks:  # still works; the new name says what it registers
            add("warning", info.name, "implements register_adapters, the deprecated name of register_lora_presets",
                "rename the function register_lora_presets (same signature)")
    loaders = [impl.plugin_name for impl in reversed(plugin_set.hook.load_model.get_hookimpls())]
    if len(loaders) > 2:
        add("info", "load_model", f"several plugins load models; they are asked in this order: {', '.join(loaders)}")
    return findings


def _fix_for(error: str, plugin: str) -> str:
    if "ModuleNotFoundError" in error or "ImportError" in error:
        return f"install what it imports, or reinstall it (nlpapp plugins install -U ...), or nlpapp plugins uninstall {plugin}"
    if "unknown hook" in error:
        return "rename the function to the hook it means (docs/hooks.md lists them)"
    if "registered twice" in error or "already registered" in error:
        return "two plugins claim one name: uninstall one, or rename in the plugin you control"
    return f"read the error above; nlpapp plugins uninstall {plugin} removes it"
