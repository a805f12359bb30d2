"""What a server serves: the models and adapters it was started with, loaded once, and
how a request's ``model``/``adapter`` fields name one. Nothing else can be loaded over
HTTP: a request that names an unknown model or a path gets 404.

Ids: a model's is its spec as given (``smollm2``); an adapter's is ``BASE:NAME``
(``smollm2:headlines``), and ``NAME`` alone finds it too. An adapter's base model is
served with it, from its manifest, if ``--model`` did not name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model import Model
from .problems import Problem

if TYPE_CHECKING:
    from ..api import Runtime
    from ..task import TaskKind


@dataclass
class Served:
    id: str
    spec: str  # the base model's spec
    adapter: str | None = None  # the adapter's name
    folder: Path | None = None  # the adapter's folder
    task: str | None = None  # the task the adapter was trained for
    options: dict[str, Any] = field(default_factory=dict)  # the options it was trained with
    model: Model | None = None  # set once loaded
    adapter_key: str | None = None  # what ``model.activate_adapter`` takes

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "owned_by": "nlpapp", "base": self.spec,
                "adapter": self.adapter, "task": self.task,
                "head": self.model.head if self.model is not None else None}


class Catalog:
    def __init__(self, runtime: "Runtime", models: tuple[str, ...], adapters: tuple[tuple[str, str], ...]):
        """Reads every adapter's manifest now (a missing or unreadable one fails here, with
        ``NlpappError``); nothing loads until ``load``."""
        from ..runtime import adapters as adapter_files

        self.runtime = runtime
        self.entries: dict[str, Served] = {spec: Served(spec, spec) for spec in models}
        for name, where in adapters:
            folder = adapter_files.resolve(where)
            manifest = adapter_files.read_manifest(folder)
            base = manifest["base_model"]["spec"]
            self.entries.setdefault(base, Served(base, base))
            self.entries[f"{base}:{name}"] = Served(f"{base}:{name}", base, name, folder, manifest["task"],
                                                    dict(manifest.get("options") or {}))

    def load(self) -> None:
        """Load every model and adapter (on the model thread); ``NlpappError`` for one that fails."""
        from ..runtime import adapters as adapter_files

        store = self.runtime.models
        for served in self.entries.values():
            if served.folder is None:
                served.model = store.load(served.spec)
                continue
            served.model = store.load(served.spec, adapter=str(served.folder))
            full = adapter_files.read_manifest(served.folder)["kind"] == "full"
            served.adapter_key = None if full else store.adapter_key(served.folder)

    @property
    def loaded(self) -> bool:
        return all(s.model is not None for s in self.entries.values())

    def activate(self, served: Served) -> Model:
        """The model with ``served``'s adapter on (or none); call on the model thread."""
        assert served.model is not None
        served.model.activate_adapter(served.adapter_key)
        return served.model

    def find(self, model: str | None, adapter: str | None = None) -> Served:
        """The served entry a request names: ``model`` (an id, or an adapter's name) and
        ``adapter`` (a name; with ``model`` its base).

        :raises Problem: 404 for a name this server does not serve."""
        if adapter is not None:
            named = [s for s in self.entries.values() if s.adapter == adapter]
            matches = [s for s in named if model in (None, s.spec, s.id)]
            if matches:
                return matches[0]
            if named:  # served, on another base than the model named
                raise Problem(400, f"adapter {adapter!r} is served on {named[0].spec!r}, not on {model!r}; use model "
                                   f"{named[0].id!r}", param="adapter", code="adapter_base_mismatch")
            raise self._unknown(adapter, "adapter")
        if model is None:
            raise Problem(400, "name a model: one of " + ", ".join(self.entries), param="model", code="missing_model")
        if model in self.entries:
            return self.entries[model]
        name = model.rpartition(":")[2]  # BASE:NAME with the wrong base, or NAME alone
        by_name = [s for s in self.entries.values() if s.adapter == name]
        if len(by_name) == 1 and (name == model or model.startswith(f"{by_name[0].spec}:")):
            return by_name[0]
        if by_name:
            raise Problem(404, f"model {model!r} is not served here; adapter {name!r} is served as "
                               f"{', '.join(repr(s.id) for s in by_name)}", param="model", code="model_not_found")
        raise self._unknown(model, "model")

    def for_task(self, task: "TaskKind", model: str | None, adapter: str | None) -> Served:
        """The entry a task request runs on: the one it names, else a served base model whose
        head the task can use (its default model first).

        :raises Problem: 404 for an unknown name; 400 for an adapter of another task, or
            when no served model can run the task."""
        if model is not None or adapter is not None:
            served = self.find(model, adapter)
            if served.task is not None and self.runtime.registries.tasks.canonical(served.task) != task.name:
                raise Problem(400, f"adapter {served.adapter!r} was trained for task {served.task!r}, not "
                                   f"{task.name!r}; use it with /v1/tasks/{served.task}", param="adapter",
                              code="adapter_task_mismatch")
            return served
        bases = [s for s in self.entries.values() if s.adapter is None and s.model is not None
                 and s.model.head in task.heads]
        bases.sort(key=lambda s: (s.spec != task.default_model, task.heads.index(s.model.head)))
        if not bases:
            raise Problem(400, f"no model this server serves can run task {task.name!r} (it needs one of the heads "
                               f"{', '.join(task.heads)}); name an adapter trained for it, or start the server "
                               f"with a --model that can", param="model", code="no_model_for_task")
        return bases[0]

    def _unknown(self, name: str, kind: str) -> Problem:
        import difflib

        close = difflib.get_close_matches(name, list(self.entries), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else f"; this server serves: {', '.join(self.entries)}"
        return Problem(404, f"{kind} {name!r} is not served here{hint}", param=kind, code="model_not_found")
