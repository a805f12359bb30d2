"""Calling hooks one plugin at a time, so an exception inside a plugin's hook names the
plugin, and an observer that fails does not stop the work it observes."""

from __future__ import annotations

from typing import Any

from . import log
from .errors import NlpappError, PluginError

_warned: set[tuple[str, str]] = set()  # (plugin, hook): each failing observer is reported once


def _implementations(hook: Any) -> list[Any]:
    return list(reversed(hook.get_hookimpls()))  # pluggy's call order


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def first_result(hook: Any, **kwargs: Any) -> Any:
    """``firstresult`` semantics; a plugin's own bug becomes a ``PluginError`` naming it."""
    for impl in _implementations(hook):
        try:
            result = _call(impl, kwargs)
        except NlpappError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook.name}: {type(exc).__name__}: {exc}") from exc
        if result is not None:
            return result
    return None


def notify(hook: Any, **kwargs: Any) -> None:
    """Call every observer; one that raises is named in a warning (once) and skipped."""
    for impl in _implementations(hook):
        try:
            _call(impl, kwargs)
        except Exception as exc:
            if (impl.plugin_name, hook.name) not in _warned:
                _warned.add((impl.plugin_name, hook.name))
                log.warn(f"plugin {impl.plugin_name!r} failed in {hook.name} (ignored from now on): "
                         f"{type(exc).__name__}: {exc}")
