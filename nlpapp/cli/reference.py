"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

    python -m nlpapp.cli.reference > docs/cli.md     # regenerate
    python -m nlpapp.cli.reference --check docs/cli.md   # exit 1 if it is stale

It is built with the seven built-in plugins only and without any task files of the current
folder, so the text is the same on every machine."""

from __future__ import annotations

import os
import sys
import tempfile

import click

BUILT_IN_PLUGINS = "default-models,generation,qa,sentiment,summarization,token-classification,translation"
WIDTH = 100

HEADER = """# CLI reference

Generated from `nlpapp --help` and each command's `--help` by `python -m nlpapp.cli.reference`
(with the built-in plugins only); a test fails when this file is stale. Task commands
(`run`, `train`, `eval`) get one subcommand per task kind and per task file, with the task's
own options.
"""


def _sections(command: click.Command, path: list[str], parent: click.Context | None, obj: object = None
              ) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH,
                        obj=obj, **command.context_settings)
    with ctx.scope(cleanup=False):  # commands find the invocation's state on the current context
        sections = [f"## {' '.join(path)}\n\n```\n{command.get_help(ctx)}\n```\n"]
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    sections += _sections(sub, path + [name], ctx)
    return sections


def render() -> str:
    """The reference, from a clean environment: built-in plugins, no task-file folders."""
    saved_env = {k: os.environ.get(k) for k in ("NLPAPP_LOAD_PLUGINS", "NLPAPP_DISABLE_PLUGINS", "NLPAPP_TASKS")}
    saved_cwd = os.getcwd()
    os.environ["NLPAPP_LOAD_PLUGINS"] = BUILT_IN_PLUGINS
    os.environ.pop("NLPAPP_DISABLE_PLUGINS", None)
    os.environ.pop("NLPAPP_TASKS", None)
    try:
        with tempfile.TemporaryDirectory() as empty:
            os.chdir(empty)  # no ./tasks
            from . import main

            current = main.CliState()
            main._register_plugin_commands(current)
            return HEADER + "\n" + "\n".join(_sections(main.cli, ["nlpapp"], None, obj=current))
    finally:
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


if __name__ == "__main__":
    from ..apidoc import print_or_check

    raise SystemExit(print_or_check(render(), sys.argv[1:], "nlpapp.cli.reference"))
