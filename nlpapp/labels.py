"""A model's label names against the data's.

A classifier with a trained head predicts the names in its config (``id2label``): the
SST-2 DistilBERT checkpoint says ``NEGATIVE``/``POSITIVE``, an untitled head ``LABEL_0``/
``LABEL_1``. Scored against data labelled ``negative``/``positive``, every prediction would
be wrong. ``check`` refuses that in one line, before any example is predicted, and a label
map (``--label-map NEGATIVE=negative,POSITIVE=positive``: model label -> data label)
renames the model's labels: evaluation renames the predictions before scoring, training
puts the data's labels on the rows of the model's head, which is kept and fine-tuned.

A map's names that the model does not have are ignored, so one map serves both systems of
a comparison (a base with ``NEGATIVE`` and its adapter trained under ``negative``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from . import log
from .errors import NlpappError

OPTION = "--label-map"
FORM = "MODEL=DATA,..."
LISTED = 20  # labels named in a message; more are counted


def parse_map(value: str | Mapping[str, Any] | None, where: str = OPTION) -> dict[str, str]:
    """A label map, model label -> data label, from ``"NEGATIVE=negative,POSITIVE=positive"``
    or a mapping (a task file's ``label_map:``, a dict in Python); ``None`` is an empty map.
    Raises ``NlpappError`` naming ``where`` for a pair without ``=``, an empty name or a
    label given twice."""
    from .configs import parse_pairs

    return {} if value is None else parse_pairs(value, where, FORM)


def is_label_task(runtime: Any, task: Any) -> bool:
    """Whether ``task`` can use a head whose outputs are named labels (a classifier, a
    tagger): only then are the data's labels collected and compared with a model's."""
    heads = runtime.registries.heads
    return any(name in heads and heads.get(name).uses_labels for name in task.heads)


def data_labels(task: Any, references: Iterable[str]) -> set[str]:
    """The label names in reference strings, as the task reads them (one label, or a tag
    per word for a tagger: ``TaskKind.label_names``)."""
    field = task.target_fields[0]
    return {name for reference in references for name in task.label_names({field: reference})}


def model_labels(runtime: Any, model: Any) -> tuple[str, ...]:
    """The labels a loaded model's head predicts (its config's ``id2label``, in id order),
    or ``()`` when its head has none (a language model, a zero-shot encoder)."""
    heads = runtime.registries.heads
    if model.head not in heads or not heads.get(model.head).uses_labels:
        return ()
    return tuple(model.labels)


def base_labels(runtime: Any, spec: str, head: str) -> tuple[str, ...]:
    """The labels of ``spec``'s own trained ``head`` (its config's ``id2label``, in id
    order), read from its config without loading weights; ``()`` when the base has no such
    head (a bare encoder gets a new one) or its config cannot be read here."""
    from .errors import ModelLoadError

    heads = runtime.registries.heads
    if head not in heads or not heads.get(head).uses_labels or runtime.models.base_head(spec) != head:
        return ()
    from .runtime.hf import read_config

    try:
        config = read_config(runtime.models.resolve(spec).path, runtime.models.options)
    except ModelLoadError:
        return ()
    id2label = {int(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
    return tuple(str(id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels))


def check(model: Sequence[str], data: Iterable[str], label_map: Mapping[str, str], name: str) -> None:
    """Before a model with named labels is scored on ``data``: raise ``NlpappError`` (one
    line, both label sets, the ``--label-map`` to pass) when its labels, renamed by
    ``label_map``, share none with the data's or match some only when case is ignored; warn
    in one line about data labels it never predicts. ``name`` names the model."""
    data = sorted(set(data))
    _refuse_mismatch(model, data, label_map, name)
    predicted = {label_map.get(m, m) for m in model}
    never = [d for d in data if d not in predicted]
    if never:
        log.warn(f"model {name!r} never predicts the data's label{'s' * (len(never) > 1)} {_listed(never)} "
                 f"(its labels: {_listed(_renamed(model, label_map))}); those examples are scored wrong")


def rename(task: Any, prediction: str, label_map: Mapping[str, str]) -> str:
    """A prediction's text with its model labels renamed to the data's: the whole text for
    a task that predicts one label, each tag for a tagger (tags separated by spaces)."""
    if not label_map:
        return prediction
    names = task.label_names({task.target_fields[0]: prediction})
    if names == [prediction]:
        return label_map.get(prediction, prediction)
    return " ".join(label_map.get(n, n) for n in names)


def training_ids(data: Sequence[str], base: Sequence[str], label_map: Mapping[str, str], name: str
                 ) -> dict[str, int]:
    """Label name -> output id for training a head with labels. ``data``: the training
    data's labels, sorted; ``base``: the labels of the base model's own trained head, in id
    order (``base_labels``), or none. Without a trained head, a new one gets the data's
    labels in order. With one, its outputs keep their ids and are named by the data's
    labels through ``label_map`` (so its weights are kept): raises ``NlpappError`` when its
    labels and the data's do not match (as ``check``), when the map gives two outputs one
    name, or when the data has a label the head has no output for."""
    if not base:
        return {label: i for i, label in enumerate(data)}
    _refuse_mismatch(base, data, label_map, name)
    names = _renamed(base, label_map)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        sources = [m for m in base if label_map.get(m, m) == twice[0]]
        raise NlpappError(f"{OPTION} gives {' and '.join(sources)} of model {name!r} the same label {twice[0]!r}; "
                          "a trained head needs one label per output")
    missing = [d for d in data if d not in names]
    if missing:
        raise NlpappError(f"the data has label{'s' * (len(missing) > 1)} {_listed(missing)}, for which the trained "
                          f"head of model {name!r} has no output (its labels: {_listed(names)}); map its labels onto "
                          f"the data's with {OPTION} {FORM}, or train from a model without a classification head")
    return {label: i for i, label in enumerate(names)}


def _refuse_mismatch(model: Sequence[str], data: Sequence[str], label_map: Mapping[str, str], name: str) -> None:
    """Raise when the renamed model labels and ``data`` share none, or some pair differs in case only."""
    renamed = _renamed(model, label_map)
    by_case = {d.casefold(): d for d in data}
    case_only = {m: by_case[r.casefold()] for m, r in zip(model, renamed)
                 if r not in data and r.casefold() in by_case}
    shown = f"model {name!r} predicts {_listed(renamed)}" + (
        f" (its labels {_listed(model)} renamed by {OPTION})" if renamed != list(model) else "")
    if case_only:
        suggested = {**{m: r for m, r in zip(model, renamed) if r != m}, **case_only}
        raise NlpappError(f"{shown} but the data's labels are {_listed(data)}: they differ only in case; "
                          f"pass {OPTION} {','.join(f'{m}={d}' for m, d in suggested.items())}")
    if not set(renamed) & set(data):
        raise NlpappError(f"{shown} but the data's labels are {_listed(data)}: none in common, so every prediction "
                          f"would be scored wrong; pass {OPTION} {FORM} naming the data's label for each of the "
                          "model's")


def _renamed(model: Sequence[str], label_map: Mapping[str, str]) -> list[str]:
    return [label_map.get(m, m) for m in model]


def _listed(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:LISTED])
    return shown + (f" and {len(labels) - LISTED} more" if len(labels) > LISTED else "")
