"""The plugin manager factory: discover, load, validate and collect plugins.

Nothing happens at import time. ``load_plugins()`` builds a fresh manager, registers the
built-in core plugin, then each entry point in the ``nlpapp`` group -- the six built-in
task plugins take exactly the path a third-party plugin takes. A plugin that fails to
import, validate or register is skipped with one warning line and reported as failed;
it never stops the CLI, unless strict mode (``--strict-plugins``, ``NLPAPP_STRICT_PLUGINS=1``)
makes any plugin problem fatal.

Precedence: when two plugins register one name, the first collected keeps it and the other
keeps everything else it registered (the conflict is reported). Plugins named in
``NLPAPP_OVERRIDE_PLUGINS`` are collected first, then the core and the built-in plugins (the
distributions shipped with nlpapp), then the others by name.

Timing: each plugin's import and each of its registration hooks is timed; one slower than
``NLPAPP_PLUGIN_SLOW_SECONDS`` (default 1 s) is warned about at load and listed by
``nlpapp plugins doctor``. It is not stopped: Python cannot safely interrupt a function
running in-process (a signal works only on the main thread, and an import cut half-way
leaves a broken module behind), so the remedy is to disable the plugin."""

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
from .errors import DuplicateNameError, NlpappError, PluginError
from .registry import Registries, aliases_of, make_registrar

ENTRY_POINT_GROUP = "nlpapp"
CORE_PLUGIN = "nlpapp.core"
LOAD_ENV = "NLPAPP_LOAD_PLUGINS"  # comma-separated allow-list; empty loads none
DISABLE_ENV = "NLPAPP_DISABLE_PLUGINS"  # comma-separated block-list
HOOK_API_ATTRIBUTE = "NLPAPP_HOOK_API"  # optional: the hook API version a plugin module was written for
HEAVY_MODULES = ("torch", "transformers", "peft", "sacrebleu", "rouge_score", "matplotlib")
STRICT_ENV = "NLPAPP_STRICT_PLUGINS"  # 1: any plugin problem is fatal (as --strict-plugins)
OVERRIDE_ENV = "NLPAPP_OVERRIDE_PLUGINS"  # comma-separated: these plugins' names win over the built-ins'
SLOW_ENV = "NLPAPP_PLUGIN_SLOW_SECONDS"  # the load-time budget of an import or one hook
SLOW_SECONDS = 1.0  # every nlpapp command waits for every plugin's import and registration hooks
# The plugins shipped with nlpapp, by entry point and distribution: they win name conflicts.
BUILTIN_PLUGINS = {"default-models": "nlpapp-default-models", "generation": "nlpapp-generation",
                   "qa": "nlpapp-qa", "sentiment": "nlpapp-sentiment", "summarization": "nlpapp-summarization",
                   "token-classification": "nlpapp-token-classification", "translation": "nlpapp-translation"}


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
    hook_seconds: dict[str, float] = field(default_factory=dict)  # load-time hook -> seconds it took
    slow: list[str] = field(default_factory=list)  # what took longer than the budget, e.g. "register_models took 2.00 s"
    conflicts: list[str] = field(default_factory=list)  # names it lost to another plugin
    overridden: list[str] = field(default_factory=list)  # names it lost to a plugin the user chose to override it

    @property
    def builtin(self) -> bool:
        """The core, or one of the plugins shipped with nlpapp."""
        dist = (self.distribution or "").lower().replace("_", "-")
        return self.name == CORE_PLUGIN or BUILTIN_PLUGINS.get(self.name) == dist

    def problems(self) -> list[str]:
        """What strict mode refuses: a failure to load, a name conflict, a slow import or hook."""
        failed = [self.error] if self.status in ("failed", "incompatible") and self.error else []
        return failed + self.conflicts + [f"is slow: {what}" for what in self.slow]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "status": self.status, "error": self.error,
                "hooks": self.hooks, "registered": self.registered,
                "import_seconds": round(self.import_seconds, 4), "heavy_imports": self.heavy_imports,
                "requires_nlpapp": self.requires, "builtin": self.builtin,
                "hook_seconds": {h: round(t, 4) for h, t in self.hook_seconds.items()},
                "slow": self.slow, "conflicts": self.conflicts, "overridden": self.overridden}


@dataclass
class PluginSet:
    manager: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    registries: Registries

    @property
    def hook(self) -> Any:
        return self.manager.hook

    def problems(self) -> list[str]:
        """Every plugin problem strict mode refuses, one line each, naming the plugin."""
        return [f"plugin {info.name!r}: {problem}" for info in self.plugins.values() for problem in info.problems()]


def strict_mode() -> bool:
    """Whether ``NLPAPP_STRICT_PLUGINS`` (set by ``--strict-plugins`` too) makes plugin problems fatal."""
    return os.environ.get(STRICT_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def slow_limit() -> float:
    """The load-time budget, in seconds, of a plugin's import or one of its hooks.

    :raises NlpappError: ``NLPAPP_PLUGIN_SLOW_SECONDS`` is not a positive number."""
    value = os.environ.get(SLOW_ENV, "").strip()
    try:
        limit = float(value) if value else SLOW_SECONDS
    except ValueError:
        limit = -1.0
    if not limit > 0:
        raise NlpappError(f"{SLOW_ENV} must be a positive number of seconds, got {value!r}")
    return limit


def record_time(info: PluginInfo, what: str, seconds: float, limit: float,
                warn: Callable[[str], None] = log.warn) -> None:
    """Note how long a plugin's load-time hook (or its import) took; warn when over ``limit``."""
    if what != "import":
        info.hook_seconds[what] = info.hook_seconds.get(what, 0.0) + seconds
    if seconds > limit:
        info.slow.append(f"{what} took {seconds:.2f} s")
        warn(f"plugin {info.name!r} is slow: its {what} took {seconds:.2f} s (budget {limit:g} s, {SLOW_ENV}), "
             f"and every nlpapp command waits for it; NLPAPP_DISABLE_PLUGINS={info.name} skips it")


def fail_if_strict(problems: list[str], strict: bool | None = None) -> None:
    """In strict mode (``strict``, or when ``None`` the environment), the first problem as
    one ``PluginError`` line.

    :raises PluginError: strict mode is on and there is a problem."""
    if problems and (strict_mode() if strict is None else strict):
        more = f"; {len(problems) - 1} more: nlpapp plugins doctor lists them" if len(problems) > 1 else ""
        raise PluginError(f"{problems[0]} (fatal with --strict-plugins or {STRICT_ENV}=1{more})")


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
                 warn: Callable[[str], None] = log.warn, strict: bool | None = None) -> PluginSet:
    """Build a plugin manager with every allowed plugin registered and collected.

    :param entry_points: discover installed plugins (off in isolated tests).
    :param extra: ``(name, plugin)`` pairs registered after the entry points.
    :param warn: receives one line per plugin that failed, lost a name or was slow.
    :param strict: make any plugin problem fatal; ``None``: as ``NLPAPP_STRICT_PLUGINS`` says.
    :raises PluginError: in strict mode, the first plugin problem, on one line.
    :raises NlpappError: ``NLPAPP_PLUGIN_SLOW_SECONDS`` is not a positive number.
    """
    strict = strict_mode() if strict is None else strict
    if strict:
        warn = lambda message: None  # the one error line below says it instead
    limit = slow_limit()
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
            record_time(info, "import", info.import_seconds, limit, warn)
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

    overrides = [n.strip() for n in os.environ.get(OVERRIDE_ENV, "").split(",") if n.strip()]
    for name, plugin in _by_precedence(pm.list_name_plugin(), infos, overrides):
        try:
            _collect(pm, plugin, name, infos, registries, overrides, limit, warn)
        except Exception as exc:
            pm.unregister(plugin)
            prefix = "" if isinstance(exc, NlpappError) else f"{type(exc).__name__}: "
            _fail(infos[name], f"failed to register: {prefix}{exc}", warn)
    for name, info in infos.items():
        info.registered = registries.registered_by(name)
    plugin_set = PluginSet(pm, infos, registries)
    fail_if_strict(plugin_set.problems(), strict)
    return plugin_set


def _by_precedence(named: Iterable[tuple[str, object]], infos: dict[str, PluginInfo],
                   overrides: list[str]) -> list[tuple[str, object]]:
    """The order plugins claim names in: the user's overrides, the core and the built-in
    plugins, then the others in load order (by name). An earlier plugin keeps a name."""
    def rank(pair: tuple[int, tuple[str, object]]) -> tuple[int, int, int]:
        position, (name, _) = pair
        if name in overrides:
            return (0, overrides.index(name), position)
        return (1 if infos[name].builtin else 2, 0, position)

    return [pair for _, pair in sorted(enumerate(named), key=rank)]


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


def _collect(pm: pluggy.PluginManager, plugin: object, name: str, infos: dict[str, PluginInfo],
             registries: Registries, overrides: list[str], limit: float, warn: Callable[[str], None]) -> None:
    """Run one plugin's registration hooks, timing each. Commit nothing if one raises or the
    plugin registers a name twice; an item whose name an earlier plugin holds is left out and
    reported as a conflict, and the plugin keeps the rest."""
    info = infos[name]
    staged: list[tuple[Any, Any]] = []
    for hook_name, registry in registries.by_hook().items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                register = make_registrar(_Staging(registry, staged), name)
                started = time.perf_counter()
                try:
                    impl.function(*[{"register": register}[a] for a in impl.argnames])
                finally:  # a hook that is slow and then raises is still slow
                    record_time(info, hook_name, time.perf_counter() - started, limit, warn)
    trial: dict[int, set[str]] = {id(reg): set() for reg, _ in staged}
    for registry, item in staged:  # check the plugin's own names first so its mistake commits nothing
        names = trial[id(registry)]
        for taken in (item.name, *aliases_of(item)):
            if taken in names:
                raise DuplicateNameError(f"{registry.kind} {taken!r} is registered twice")
            names.add(taken)
    for registry, item in staged:
        taken = next((n for n in (item.name, *aliases_of(item)) if n in registry), None)
        if taken is None:
            registry.add(item, name)
            continue
        winner = registry.plugin_of(taken)
        why = ("named in " + OVERRIDE_ENV if winner in overrides else
               "built-in plugins win" if infos[winner].builtin else
               "the first plugin by name wins")
        message = (f"{registry.kind} {taken!r} is registered by both plugin {winner!r} and plugin {name!r}; "
                   f"plugin {winner!r} keeps it ({why})")
        if winner in overrides:  # the user asked for this: worth a note, not a warning
            info.overridden.append(message)
            continue
        message += f"; {OVERRIDE_ENV}={name} gives it to plugin {name!r}"
        info.conflicts.append(message)
        info.error = "; ".join(info.conflicts)  # loaded, but not all of it: say why
        warn(f"plugin {name!r}: {message}")


class _Staging:
    """Looks like a Registry to a registrar but only records, type-checking on the spot."""

    def __init__(self, registry: Any, staged: list[tuple[Any, Any]]):
        self.registry, self.staged, self.kind = registry, staged, registry.kind

    def add(self, item: Any, plugin: str) -> None:
        if not isinstance(item, self.registry.item_type):
            raise NlpappError(f"registered a {type(item).__name__} as a {self.kind}; "
                              f"expected a {self.registry.item_type.__name__}")
        self.staged.append((self.registry, item))
