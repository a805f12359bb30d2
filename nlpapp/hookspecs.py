"""The hooks nlpapp calls. A plugin implements any of them with ``@nlpapp.hookimpl``.

Registration hooks (``register_*``) fire once, when a ``Runtime`` is built from the plugin
manager; each receives a ``register`` callable bound to the calling plugin, so every
duplicate or error names the plugin that caused it. They must stay cheap: import torch and
transformers inside the functions that run a model, never at module level. Each is timed,
and one over ``NLPAPP_PLUGIN_SLOW_SECONDS`` (default 1 s) is named in a warning.

When two plugins register one name, the built-in plugins win, unless the user names the
other in ``NLPAPP_OVERRIDE_PLUGINS``; the loser keeps its other registrations.

Observers (``on_train_*``) get read-only copies of what they observe (``hookcall.freeze``):
changing one is the observer's failure and leaves the run unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    import click

    from .head import ModelHead
    from .model import Model
    from .task import TaskKind
    from .training.config import TrainConfig
    from .types import BackendSpec, DatasetSpec, LoadOptions, LoraPreset, MetricSpec, ModelPreset, TaskFolder

PROJECT = "nlpapp"
HOOK_API_VERSION = 1  # bumped when a hook's signature changes incompatibly

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_task_kinds(register: Callable[["TaskKind"], None]) -> None:
    """Register task kinds (``TaskKind`` instances).

    Fires when a runtime is built. ``register(task)`` adds one task kind under
    ``task.name``; a name another plugin already took raises ``DuplicateNameError``.
    Returns nothing.
    """


@hookspec
def register_models(register: Callable[["ModelPreset"], None]) -> None:
    """Register model presets and aliases (``ModelPreset``), e.g. the embedded defaults.

    Fires when a runtime is built. ``register(preset)`` makes ``preset.name`` usable as
    ``--model NAME``. ``preset.locate`` is only called when the model is loaded.
    Returns nothing.
    """


@hookspec
def register_datasets(register: Callable[["DatasetSpec"], None]) -> None:
    """Register named datasets (``DatasetSpec``) for a task kind.

    Fires when a runtime is built. Returns nothing.
    """


@hookspec
def register_task_folders(register: Callable[["TaskFolder"], None]) -> None:
    """Register folders of declarative task files (``TaskFolder``) that a plugin ships.

    Fires when a runtime is built. ``register(folder)`` adds ``folder.path`` to the places
    ``nlpapp run|train|eval NAME`` looks for ``NAME.yaml`` or ``NAME.toml``, after
    ``$NLPAPP_TASKS`` and ``./tasks``. Returns nothing.
    """


@hookspec
def register_metrics(register: Callable[["MetricSpec"], None]) -> None:
    """Register metrics (``MetricSpec``) by name, e.g. ``bleu`` or ``rouge``.

    Fires when a runtime is built. The core plugin registers the common metrics (bleu, chrf,
    ter, rouge, squad, classification) through this same hook. Returns nothing.
    """


@hookspec
def register_lora_presets(register: Callable[["LoraPreset"], None]) -> None:
    """Register LoRA presets (``LoraPreset``): the modules LoRA adapts, per model architecture.

    Fires when a runtime is built. ``register(preset)`` adds one preset under ``preset.name``;
    training uses the first preset whose ``model_types`` has the model's ``model_type``.
    Returns nothing.
    """


@hookspec(warn_on_impl=DeprecationWarning(
    "the nlpapp hook register_adapters is deprecated: rename it register_lora_presets (same signature)"))
def register_adapters(register: Callable[["LoraPreset"], None]) -> None:
    """Deprecated: the old name of ``register_lora_presets``, which it feeds the same registry.

    Fires when a runtime is built, as ``register_lora_presets`` does. Returns nothing.
    """


@hookspec
def register_heads(register: Callable[["ModelHead"], None]) -> None:
    """Register model heads (``ModelHead`` instances): what a model's output layer computes,
    which transformers class loads it, its peft task type, how its training features are
    padded and its loss summed, and which new modules are saved beside the LoRA weights.

    Fires when a runtime is built. ``register(head)`` adds one head under ``head.name``; a
    task lists the heads it can use in ``TaskKind.heads``. The built-in heads (causal-lm,
    seq2seq-lm, sequence-classification, extractive-qa, encoder) are registered by the core
    plugin through this same hook. Returns nothing.
    """


@hookspec
def register_backends(register: Callable[["BackendSpec"], None]) -> None:
    """Register backends (``BackendSpec`` instances) that run models outside PyTorch, chosen
    with ``--backend NAME`` (``LoadOptions.backend``); the plugin's ``load_model`` then answers
    for that name. The core plugin registers ``torch`` through this same hook.

    Fires when a runtime is built. ``register(backend)`` adds one under ``backend.name``.
    Returns nothing.
    """


@hookspec
def register_commands(cli: "click.Group") -> None:
    """Add click commands to the ``nlpapp`` command group: new names only (one that replaces or
    removes a built-in command, or another plugin's, is undone and reported).

    Fires when the CLI starts, before arguments are parsed. :param cli: the root group;
    call ``cli.add_lazy_command(name, "package.module:command", help)`` so ``--help`` lists
    the command without importing its module (it is imported when the command runs), or
    ``cli.add_command(cmd)`` for a command defined in the plugin's light module.
    Returns nothing.
    """


@hookspec(firstresult=True)
def load_model(path: str, head: "str | None", family: "str | None", options: "LoadOptions",
               labels: "tuple[str, ...] | None") -> "Model | None":
    """Load a model from a resolved local ``path`` (folder or file) or hub id.

    Fires each time the runtime needs a model not yet in its per-process cache, and for
    every training run and merge (which change the weights, so they get a copy of their own).
    :param path: a local folder, a converted GGUF folder, or a hub id.
    :param head: the registered head name wanted, or ``None`` to detect it.
    :param family: the same value as ``head`` (its name before heads were registered).
    :param options: device, dtype and safety switches.
    :param labels: label names for a head that ``uses_labels`` when the head is new (a
      classifier put on an encoder) or comes from an adapter; ``None`` keeps the checkpoint's.
    Returns a ``Model``, or ``None`` to let the next plugin try. ``firstresult``: the
    first non-``None`` answer wins. The built-in Hugging Face loader is registered
    ``trylast``, so any plugin can supply another backend for paths it recognises.
    """


@hookspec
def on_train_begin(config: "TrainConfig", model: Any) -> None:
    """Observe the start of a training run.

    Fires once per process, after the model and data are ready and before the first step.
    :param config: a read-only copy of the run's ``TrainConfig``. :param model: the model being
    trained (a torch module, LoRA-wrapped unless ``config.full``): the live one, not a copy, so
    only read it. Returns nothing.
    """


@hookspec
def on_train_step(step: int, metrics: dict) -> None:
    """Observe one optimizer step.

    Fires after every optimizer step, in every process. :param step: the step just done
    (from 1). :param metrics: ``loss``, ``lr``, ``tokens_per_s`` and ``epoch`` (a read-only
    dict). Returns nothing.
    """


@hookspec
def on_evaluate(step: int, metrics: dict) -> None:
    """Observe an evaluation on the held-out data.

    Fires at the end of each epoch when ``--eval-data`` is given. :param step: the step
    evaluated at. :param metrics: ``eval_loss`` and, for language models,
    ``eval_perplexity`` (a read-only dict). Returns nothing.
    """


@hookspec
def on_train_end(output: str, manifest: dict) -> None:
    """Observe the end of a successful training run.

    Fires once, in the main process, after the adapter (or model) is written.
    :param output: the folder written. :param manifest: a read-only copy of its nlpapp
    manifest (task, base model, config, data hash, final metrics). Returns nothing.
    """


HOOK_NAMES = tuple(
    name for name, value in dict(globals()).items()
    if callable(value) and hasattr(value, PROJECT + "_spec")
)
