"""Typed registries filled by the ``register_*`` hooks.

Each plugin's hook implementation is called on its own with a registrar bound to that
plugin, so a duplicate names both plugins and an exception names the one that raised."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import DuplicateNameError, NlpappError, UnknownNameError
from .head import ModelHead
from .task import TaskKind
from .types import BackendSpec, DatasetSpec, LoraPreset, MetricSpec, ModelPreset, TaskFolder

T = TypeVar("T")
# id(item) -> (a weak reference to it, the plugin that registered it): lets code that holds only
# an item (the engine, given a task) name its plugin in an error
_owners: dict[int, tuple[Callable[[], Any], str]] = {}


def owner_of(item: Any) -> str | None:
    """The plugin that registered ``item`` (a task, a metric, ...), or ``None`` if unknown."""
    ref, plugin = _owners.get(id(item), (lambda: None, ""))
    return plugin if ref() is item else None


def _remember_owner(item: Any, plugin: str) -> None:
    key = id(item)
    try:
        ref: Callable[[], Any] = weakref.ref(item, lambda _: _owners.pop(key, None))
    except TypeError:  # not weakly referable (__slots__ without __weakref__): no name in its errors
        return
    _owners[key] = (ref, plugin)


@dataclass
class Entry(Generic[T]):
    item: T
    plugin: str


class Registry(Generic[T]):
    """Name -> item, remembering which plugin registered each name. An item may also have
    ``aliases`` (other names it answers to, e.g. a task's older name); they share its
    namespace, so an alias that clashes with a name is a duplicate too."""

    def __init__(self, kind: str, item_type: type):
        self.kind = kind
        self.item_type = item_type
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}  # alias -> name

    def add(self, item: T, plugin: str) -> None:
        if not isinstance(item, self.item_type):
            raise NlpappError(f"plugin {plugin!r} registered a {type(item).__name__} as a "
                              f"{self.kind}; expected a {self.item_type.__name__}")
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise NlpappError(f"plugin {plugin!r} registered a {self.kind} without a name")
        for taken in (name, *aliases_of(item)):
            if taken in self:
                other = self._entries[self.canonical(taken)].plugin
                raise DuplicateNameError(
                    f"{self.kind} {taken!r} is registered by both plugin {other!r} and plugin "
                    f"{plugin!r}; disable one with NLPAPP_DISABLE_PLUGINS")
        self._entries[name] = Entry(item, plugin)
        self._aliases.update({alias: name for alias in aliases_of(item)})
        _remember_owner(item, plugin)

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        return self._aliases.get(name, name)

    def get(self, name: str) -> T:
        try:
            return self._entries[self.canonical(name)].item
        except KeyError:
            raise UnknownNameError(self.kind, name, self.known()) from None

    def plugin_of(self, name: str) -> str:
        return self._entries[self.canonical(name)].plugin

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[T]:
        return (e.item for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def known(self) -> list[str]:
        """The names and the aliases: everything ``get`` accepts (for did-you-mean hints)."""
        return sorted([*self._entries, *self._aliases])

    def by_plugin(self, plugin: str) -> list[str]:
        return sorted(n for n, e in self._entries.items() if e.plugin == plugin)


@dataclass
class Registries:
    """Everything the plugins registered, one typed registry per hook."""

    tasks: Registry[TaskKind] = field(default_factory=lambda: Registry("task", TaskKind))
    models: Registry[ModelPreset] = field(default_factory=lambda: Registry("model", ModelPreset))
    datasets: Registry[DatasetSpec] = field(default_factory=lambda: Registry("dataset", DatasetSpec))
    metrics: Registry[MetricSpec] = field(default_factory=lambda: Registry("metric", MetricSpec))
    lora_presets: Registry[LoraPreset] = field(default_factory=lambda: Registry("LoRA preset", LoraPreset))
    task_folders: Registry[TaskFolder] = field(default_factory=lambda: Registry("task folder", TaskFolder))
    heads: Registry[ModelHead] = field(default_factory=lambda: Registry("head", ModelHead))
    backends: Registry[BackendSpec] = field(default_factory=lambda: Registry("backend", BackendSpec))

    def by_hook(self) -> dict[str, Registry]:
        return {"register_task_kinds": self.tasks, "register_models": self.models,
                "register_datasets": self.datasets, "register_metrics": self.metrics,
                "register_lora_presets": self.lora_presets, "register_task_folders": self.task_folders,
                "register_heads": self.heads, "register_backends": self.backends,
                "register_adapters": self.lora_presets}  # the deprecated name of register_lora_presets

    @property
    def adapters(self) -> Registry[LoraPreset]:
        """The old name of ``lora_presets``."""
        return self.lora_presets

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        unique = {id(reg): reg for reg in self.by_hook().values()}.values()  # two hooks fill lora_presets
        return {reg.kind: names for reg in unique if (names := reg.by_plugin(plugin))}



def aliases_of(item: Any) -> tuple[str, ...]:
    return tuple(getattr(item, "aliases", ()) or ())


def make_registrar(registry: Registry, plugin: str) -> Callable[[Any], None]:
    """The ``register`` callable handed to one plugin's hook implementation."""

    def register(item: Any) -> None:
        registry.add(item, plugin)

    register.__qualname__ = f"register[{registry.kind} from {plugin}]"
    return register
