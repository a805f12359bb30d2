"""The library verbs. The CLI is a thin layer over these; so is any Python user."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from .model import Model, StreamCallback
from .plugins import PluginSet, load_plugins
from .runtime.engine import Predictor
from .runtime.store import ModelStore
from .task import TaskKind
from .types import LoadOptions


@dataclass
class Runtime:
    """Plugins, registries and a per-process model cache, built once and reused."""

    plugins: PluginSet
    load_options: LoadOptions = field(default_factory=LoadOptions)

    def __post_init__(self) -> None:
        self.models = ModelStore(self.plugins.hook, self.plugins.registries.models, self.load_options,
                                 self.plugins.registries.heads)

    @classmethod
    def create(cls, load_options: LoadOptions | None = None, **plugin_args: Any) -> "Runtime":
        return cls(load_plugins(**plugin_args), load_options or LoadOptions())

    @property
    def registries(self):  # noqa: ANN201 - the Registries dataclass
        return self.plugins.registries

    def task(self, name: str) -> TaskKind:
        return self.registries.tasks.get(name)

    def model_for(self, task: TaskKind, spec: str | None = None, adapter: str | None = None,
                  base_of: str | None = None) -> Model:
        """The model ``task`` runs on: ``spec`` (default: the adapter's base, else the task's
        default) with ``adapter`` active. ``base_of`` names an adapter whose base model is
        wanted as it was before training: where the task cannot use the base's own head (a
        bare encoder for a tagger), the adapter's head on it, freshly initialised (seed 0)."""
        if base_of is not None:
            return self._base_of(task, spec, base_of)
        model = self.models.load(spec or self._adapter_base(adapter) or task.default_model, adapter=adapter)
        task.check_model(model)
        return model

    def _base_of(self, task: TaskKind, spec: str | None, adapter: str) -> Model:
        from .training import adapters

        manifest = adapters.read_manifest(adapters.resolve(adapter))
        spec = spec or manifest["base_model"]["spec"]
        model = self.models.load(spec)
        if model.head not in task.heads:
            labels = tuple(manifest.get("labels") or ()) or None
            model = self.models.load(spec, head=adapters.head_of(manifest), labels=labels)
        task.check_model(model)
        return model

    def one_pass(self, model: Model) -> bool:
        """Whether ``model``'s head reads its input in one pass (batches then end at a padding limit)."""
        heads = self.registries.heads
        return heads.get(model.head).one_pass if model.head in heads else False

    @staticmethod
    def _adapter_base(adapter: str | None) -> str | None:
        """An adapter knows its base model; used when no --model is given."""
        if adapter is None:
            return None
        from .training import adapters

        return adapters.read_manifest(adapters.resolve(adapter))["base_model"]["spec"]


def run(runtime: Runtime, task_name: str, records: Iterable[tuple[str, dict[str, Any]]], *,
        model: str | None = None, adapter: str | None = None, options: dict[str, Any] | None = None,
        batch_size: int = 8, base_of: str | None = None,
        stream: StreamCallback | None = None, on_batch: Callable[[int], None] | None = None,
        ) -> Iterator[tuple[Any, Any]]:
    """Run a task over ``(where, record)`` pairs; yields ``(input, output)`` in input order.

    Records are validated into the task's typed inputs as they stream in, so a bad line
    fails with its file and line number. ``base_of``: run the base model of that adapter,
    as it was before training (see ``Runtime.model_for``)."""
    task = runtime.task(task_name)
    loaded = runtime.model_for(task, model, adapter, base_of)
    predictor = Predictor(task, loaded, options or {}, batch_size, one_pass=runtime.one_pass(loaded))
    inputs = (task.make_input(record, where) for where, record in records)
    return predictor.predict(inputs, stream=stream, on_batch=on_batch)
