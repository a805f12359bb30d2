"""What one ``nlpapp`` invocation carries: the plugins, loaded once on first use. It rides
on click's context (``main`` passes it as the root context's ``obj``), never a module
global, so each invocation — in a test, or a process that calls ``main`` twice — starts clean."""

from __future__ import annotations

import click

from ..plugins import PluginSet, load_plugins


class CliState:
    def __init__(self) -> None:
        self._plugins: PluginSet | None = None

    @property
    def plugins(self) -> PluginSet:
        if self._plugins is None:
            self._plugins = load_plugins()
        return self._plugins

    def runtime(self, **load: object):  # noqa: ANN201 - an nlpapp.Runtime (imported late: it pulls in the engine)
        """A runtime over these plugins, with ``load`` as its ``LoadOptions`` (device, dtype, ...)."""
        from ..api import Runtime
        from ..types import LoadOptions

        return Runtime(self.plugins, LoadOptions(**load))  # type: ignore[arg-type]


def state() -> CliState:
    """The invocation's state, from the current click context."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(CliState) if ctx is not None else None
    if found is None:
        raise RuntimeError("no nlpapp CLI state: run commands through nlpapp.cli.main.main")
    return found
