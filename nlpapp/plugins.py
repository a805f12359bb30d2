"""The plugin manager factory: discover, load, validate and collect plugins.

Nothing happens at import time. ``load_plugins()`` builds a fresh manager, registers the
built-in core plugin, then each entry point in the ``nlpapp`` group -- the six built-in
task plugins take exactly the path a third-party plugin takes. A plugin that fails to
import, validate or register is skipped with one warning line and reported as failed;
it never stops the CLI."""

from __future__ import annotations

import difflib
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs, log
from .errors import DuplicateNameError, NlpappError
from .registry import Registries, aliases_of, make_registrar

ENTRY_POINT_GROUP = "nlpapp"
CORE_PLUGIN = "nlpapp.core"
LOAD_ENV = "NLPAPP_LOAD_PLUGINS"  # comma-separated allow-list; empty loads none
DISABLE_ENV = "NLPAPP_DISABLE_PLUGINS"  # comma-separated block-list
HOOK_API_ATTRIBUTE = "NLPAPP_HOOK_API"  # optional: the hook API version a plugin module was written for
HEAVY_MODULES = ("torch", "transformers", "peft", "sacrebleu", "rouge_score", "matplotlib")


@dataclass
class PluginInfo:
    """What ``nlpapp plugins`` reports for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # loaded | failed | incompatible | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    import_seconds: float = 0.0
    heavy_imports: list[str] = field(default_factory=list)  # heavy libraries its import pulled in
    requires: str | None = None  # the nlpapp versions its distribution declares

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "status": self.status, "error": self.error,
                "hooks": self.hooks, "registered": self.registered,
                "import_seconds": round(self.import_seconds, 4), "heavy_imports": self.heavy_imports,
                "requires_nlpapp": self.requires}


@dataclass
class PluginSet:
    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    registries: Registries

    @property
    def hook(self) -> Any:
        return self.manager.hook


def _env_names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault(ep.name, ep)  # the first on sys.path wins, as for imports
    return [seen[n] for n in sorted(seen)]


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    errors = []
    for caller in pm.get_hookcallers(plugin) or []:
        if not caller.has_spec():
            close = difflib.get_close_matches(caller.name, hookspecs.HOOK_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append(f"implements unknown hook {caller.name!r}{hint}")
    return errors


def load_plugins(*, entry_points: bool = True, extra: Iterable[tuple[str, object]] = (),
                 warn: Callable[[str], None] = log.warn) -> PluginSet:
    """Build a plugin manager with every allowed plugin registered and collected.

    :param entry_points: discover installed plugins (off in isolated tests).
    :param extra: ``(name, plugin)`` pairs registered after the entry points.
    :param warn: receives one line per plugin that failed.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}

    from .runtime import hf_loader  # light: imports torch only when a model loads

    registries = Registries()  # filled below; the core plugin reads its heads when a model loads
    candidates: list[tuple[PluginInfo, Callable[[], object]]] = [
        (PluginInfo(CORE_PLUGIN, hf_loader.__name__), lambda: hf_loader.CorePlugin(registries))]
    if entry_points:
        for ep in _entry_points():
            info = PluginInfo(ep.name, ep.value, ep.dist.name if ep.dist else None, ep.dist.version if ep.dist else None,
                              requires=_nlpapp_requirement(ep.dist))
            candidates.append((info, ep.load))
    for name, plugin in extra:
        candidates.append((PluginInfo(name, getattr(plugin, "__name__", repr(plugin))), lambda p=plugin: p))

    allowed, blocked = _env_names(LOAD_ENV), _env_names(DISABLE_ENV) or set()
    for info, load in candidates:
        name = info.name
        infos[name] = info
        if name != CORE_PLUGIN and (name in blocked or (allowed is not None and name not in allowed)):
            info.status = "disabled"
            continue
        misfit = _version_misfit(info)  # before importing: its code may use what this nlpapp lacks
        if misfit:
            _fail(info, misfit, warn, status="incompatible")
            continue
        started = time.perf_counter()
        already = {m for m in HEAVY_MODULES if m in sys.modules}
        try:
            plugin = load()
            info.import_seconds = time.perf_counter() - started
            info.heavy_imports = [m for m in HEAVY_MODULES if m in sys.modules and m not in already]
            misfit = _hook_api_misfit(plugin)
            if misfit:
                _fail(info, misfit, warn, status="incompatible")
                continue
            pm.register(plugin, name=name)
        except Exception as exc:  # a broken plugin must not break the CLI
            _fail(info, f"failed to load: {type(exc).__name__}: {exc}", warn)
            continue
        problems = _unknown_hooks(pm, plugin)
        if problems:
            pm.unregister(plugin)
            _fail(info, "; ".join(problems), warn)
            continue
        info.hooks = sorted(c.name for c in pm.get_hookcallers(plugin) or [])

    for name, plugin in list(pm.list_name_plugin()):
        try:
            _collect(pm, plugin, name, registries)
        except Exception as exc:
            pm.unregister(plugin)
            prefix = "" if isinstance(exc, NlpappError) else f"{type(exc).__name__}: "
            _fail(infos[name], f"failed to register: {prefix}{exc}", warn)
    for name, info in infos.items():
        info.registered = registries.registered_by(name)
    return PluginSet(pm, infos, registries)


def _fail(info: PluginInfo, error: str, warn: Callable[[str], None], status: str = "failed") -> None:
    info.status, info.error = status, error
    warn(f"plugin {info.name!r} skipped: {error}")


def _nlpapp_requirement(dist: metadata.Distribution | None) -> str | None:
    """The version specifier a plugin's distribution puts on nlpapp (``nlpapp>=0.1,<0.2``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    for line in (dist.requires or []) if dist else []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.name.lower() == "nlpapp" and (requirement.marker is None or requirement.marker.evaluate()):
            return str(requirement.specifier) or None
    return None


def _version_misfit(info: PluginInfo) -> str | None:
    from packaging.specifiers import SpecifierSet

    from . import __version__

    if info.requires and not SpecifierSet(info.requires).contains(__version__, prereleases=True):
        return (f"{info.distribution} {info.version} supports nlpapp {info.requires}, and this is nlpapp "
                f"{__version__}: install a release of {info.distribution} made for {__version__}, or an nlpapp "
                f"that matches {info.requires}")
    return None


def _hook_api_misfit(plugin: object) -> str | None:
    wanted = getattr(plugin, HOOK_API_ATTRIBUTE, None)
    if wanted is not None and wanted != hookspecs.HOOK_API_VERSION:
        return (f"written for hook API {wanted}, and this nlpapp has hook API {hookspecs.HOOK_API_VERSION}: "
                "install a release of the plugin made for this nlpapp")
    return None


def _collect(pm: pluggy.PluginManager, plugin: object, name: str, registries: Registries) -> None:
    """Run one plugin's registration hooks; commit what it registered only if all succeed."""
    staged: list[tuple[Any, Any]] = []
    for hook_name, registry in registries.by_hook().items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                register = make_registrar(_Staging(registry, staged), name)
                impl.function(*[{"register": register}[a] for a in impl.argnames])
    trial: dict[int, set[str]] = {id(reg): set() for reg, _ in staged}
    for registry, item in staged:  # check every name first so a failure commits nothing
        names = trial[id(registry)]
        for taken in (item.name, *aliases_of(item)):
            if taken in registry:
                registry.add(item, name)  # raises DuplicateNameError naming both plugins
            if taken in names:
                raise DuplicateNameError(f"{registry.kind} {taken!r} is registered twice")
            names.add(taken)
    for registry, item in staged:
        registry.add(item, name)


class _Staging:
    """Looks like a Registry to a registrar but only records, type-checking on the spot."""

    def __init__(self, registry: Any, staged: list[tuple[Any, Any]]):
        self.registry, self.staged, self.kind = registry, staged, registry.kind

    def add(self, item: Any, plugin: str) -> None:
        if not isinstance(item, self.registry.item_type):
            raise NlpappError(f"registered a {type(item).__name__} as a {self.kind}; "
                              f"expected a {self.registry.item_type.__name__}")
        self.staged.append((self.registry, item))
