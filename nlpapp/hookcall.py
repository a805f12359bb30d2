"""Calling hooks one plugin at a time, so an exception inside a plugin's hook names the
plugin, and an observer that fails does not stop the work it observes.

Observers are shown read-only copies of what they observe (dicts, lists and dataclasses such
as the ``TrainConfig``, copied and frozen all the way down), so one cannot change the run or
what the next observer sees; an attempt is that observer's failure. The model given to
``on_train_begin`` is the exception: it is the live module (copying it would cost its size in
memory), which observers must only read."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import log
from .errors import NlpappError, PluginError

_warned: set[tuple[str, str]] = set()  # (plugin, hook): each failing observer is reported once


class ReadOnlyError(TypeError):
    """An observer tried to change a read-only copy it was given."""


def _refuse(self: Any, *args: Any, **kwargs: Any) -> None:
    raise ReadOnlyError(f"this {type(self).__name__} is read-only: observers are given copies they cannot change")


def _refuse_attribute(self: Any, name: str, *value: Any) -> None:
    raise ReadOnlyError(f"cannot change {type(self).__name__}.{name}: observers are given read-only copies")


class FrozenDict(dict):
    """A ``dict`` that refuses changes; ``dict(it)`` or ``copy.deepcopy(it)`` is a plain, changeable dict."""

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> Any:
        return dict, (dict(self),)


class FrozenList(list):
    """A ``list`` that refuses changes; ``list(it)`` or ``copy.deepcopy(it)`` is a plain, changeable list."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = extend = insert = pop = remove = clear = sort = \
        reverse = _refuse

    def __reduce__(self) -> Any:
        return list, (list(self),)


_read_only_classes: dict[type, type] = {}


def _read_only_class(cls: type) -> type:
    """A subclass of dataclass ``cls`` whose instances refuse attribute changes (same name and
    repr). Building one anew (``dataclasses.replace``) or copying one gives a plain ``cls``."""
    if cls not in _read_only_classes:
        _read_only_classes[cls] = type(cls.__name__, (cls,), {
            "__slots__": (), "__qualname__": cls.__qualname__, "__module__": cls.__module__,
            "__new__": lambda _, *args, **kwargs: cls(*args, **kwargs),
            "__setattr__": _refuse_attribute, "__delattr__": _refuse_attribute,
            "__reduce__": lambda self: (_thawed, (cls, _state(self)))})
    return _read_only_classes[cls]


def _state(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _thawed(cls: type, state: dict[str, Any]) -> Any:
    """A changeable copy of a frozen dataclass (what ``copy.deepcopy`` gives an observer)."""
    obj = cls.__new__(cls)
    for name, value in state.items():
        object.__setattr__(obj, name, value)
    return obj


def freeze(value: Any) -> Any:
    """A read-only copy of ``value``: dicts, lists, tuples, sets and dataclass instances are
    copied and frozen recursively; other objects (numbers, strings, a model) are returned as they are."""
    if isinstance(value, (FrozenDict, FrozenList)) or type(value) in _read_only_classes.values():
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    if type(value) is tuple:
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        copy = object.__new__(_read_only_class(type(value)))
        for name, item in _state(value).items():
            object.__setattr__(copy, name, freeze(item))
        return copy
    return value


def _implementations(hook: Any) -> list[Any]:
    return list(reversed(hook.get_hookimpls()))  # pluggy's call order


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def first_result(hook: Any, **kwargs: Any) -> Any:
    """``firstresult`` semantics; a plugin's own bug becomes a ``PluginError`` naming it.

    :raises PluginError: a plugin's implementation raised (or returned the wrong type, for
      ``load_model``: anything but an ``nlpapp.Model`` or ``None``).
    :raises NlpappError: a plugin's implementation raised one (passed through)."""
    for impl in _implementations(hook):
        try:
            result = _call(impl, kwargs)
        except NlpappError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook.name}: {type(exc).__name__}: {exc}") from exc
        if result is not None:
            _check_result(impl.plugin_name, hook.name, result)
            return result
    return None


def _check_result(plugin: str, hook: str, result: Any) -> None:
    """A wrong answer fails here, naming the plugin, not later in code that never heard of it."""
    if hook == "load_model":
        from .model import Model

        if not isinstance(result, Model):
            raise PluginError(f"plugin {plugin!r} failed in load_model: it returned a {type(result).__name__}; "
                              "a loader returns an nlpapp.Model, or None to let the next plugin try")


def notify(hook: Any, **kwargs: Any) -> None:
    """Call every observer with read-only copies of ``kwargs`` (see ``freeze``); one that
    raises (a change to a copy included) is named in a warning, once, and the work goes on.

    :raises PluginError: an observer raised, in strict mode (``NLPAPP_STRICT_PLUGINS``)."""
    implementations = _implementations(hook)
    if not implementations:
        return  # no copies to make
    from .plugins import strict_mode

    frozen = {name: freeze(value) for name, value in kwargs.items()}  # shared: nobody can change them
    for impl in implementations:
        try:
            _call(impl, frozen)
        except Exception as exc:
            message = f"plugin {impl.plugin_name!r} failed in {hook.name}: {type(exc).__name__}: {exc}"
            if strict_mode():
                raise PluginError(f"{message} (fatal with --strict-plugins or NLPAPP_STRICT_PLUGINS=1)") from exc
            if (impl.plugin_name, hook.name) not in _warned:
                _warned.add((impl.plugin_name, hook.name))
                log.warn(message.replace(f" in {hook.name}:", f" in {hook.name} (ignored from now on):", 1))
