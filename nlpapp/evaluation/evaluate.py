"""``evaluate()``: run a task over labelled data and score it with registered metrics,
with bootstrap intervals; ``compare()`` does it for two systems on the same examples and
adds paired-bootstrap p-values."""

from __future__ import annotations

import itertools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .. import datasets
from ..errors import NlpappError
from ..task import TaskKind
from . import bootstrap


@dataclass
class LabelledSource:
    """Labelled examples from a file or a registered dataset, validated whole up front and
    then streamed once per system: only predictions and references are held in memory
    (corpus metrics and the bootstrap need them), never the inputs. Stdin is read once and kept."""

    runtime: Any
    task: TaskKind
    spec: str
    columns: dict[str, str]
    limit: int | None = None  # the first N examples only

    def __post_init__(self) -> None:
        from .. import labels

        if not self.task.target_fields:
            raise NlpappError(f"task {self.task.name!r} has no reference field to evaluate against")
        self._buffered = list(itertools.islice(self._open(), self.limit)) if self.spec == "-" else None
        self.labels: set[str] = set()  # the label names of the references, for a task with labelled heads
        check = datasets.check_labelled(self.task)
        if labels.is_label_task(self.runtime, self.task):
            def check_and_collect(record: dict[str, Any], where: str) -> None:
                check(record, where)
                self.labels |= labels.data_labels(self.task, self.task.references(record, where))
            self.count = datasets.validate(self.records(), check_and_collect, self._name())
        else:
            self.count = datasets.validate(self.records(), check, self._name())

    def _name(self) -> str:
        return "stdin" if self.spec == "-" else self.spec

    def _open(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return datasets.open_records(self.runtime.registries, self.task, self.spec, self.columns)

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        return itertools.islice(iter(self._buffered) if self._buffered is not None else self._open(), self.limit)

    def used_columns(self) -> set[str]:
        """The columns the task reads; any other (an ``id``, say) passes through to the predictions."""
        return {*self.task.input_fields, *self.task.target_fields, *self.columns.values()}


def score(runtime: Any, metric_names: list[str], predictions: list[str], references: list[list[str]],
          rounds: int, seed: int, language: str | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Scores with intervals and signatures; also returns each metric's resampler.
    ``language`` (the target language) goes to the metrics that take it (``MetricSpec.language``)."""
    results, resamplers = {}, {}
    for name in metric_names:
        metric = runtime.registries.metrics.get(name)
        settings = {"language": language} if metric.language and language else {}
        result = metric.compute(predictions, references, **settings)
        cis = bootstrap.intervals(result.resample, len(predictions), rounds, seed) if rounds else {}
        for key, value in result.scores.items():
            results[key] = {"value": value, "ci95": list(cis[key]) if key in cis else None,
                            "signature": result.signature, "metric": name,
                            "higher_is_better": metric.higher_is_better}
        resamplers[name] = result.resample
    return results, resamplers


def target_language(task: TaskKind, options: Any, adapter: str | None = None) -> str | None:
    """The target language the task's options name (``target_lang``; an adapter's saved
    options under the given ones), or None: the language of the predictions being scored."""
    from ..runtime.adapters import with_saved_options

    if adapter is not None:
        options = with_saved_options(adapter, task, options)
    return getattr(task.parse_options(options or {}), "target_lang", None) or None


INPUT_SHOWN_CHARS = 200  # of each example's main input kept beside its prediction


def predict(runtime: Any, task: TaskKind, data: LabelledSource, model: str | None, adapter: str | None,
            options: dict[str, Any], batch_size: int, label: str = "", base_of: str | None = None,
            label_map: dict[str, str] | None = None
            ) -> tuple[list[str], list[list[str]], list[dict[str, Any]], float]:
    """Stream the examples through the task; return prediction texts (a model's labels
    renamed by ``label_map``), references, each example's other columns (see
    ``LabelledSource.used_columns``) and seconds."""
    from tqdm import tqdm

    from .. import labels
    from ..api import run
    from ..runtime.records import other_columns

    label_map = label_map or {}
    references: list[list[str]] = []
    others: list[dict[str, Any]] = []
    used = data.used_columns()

    def records() -> Iterator[tuple[str, dict[str, Any]]]:
        for where, record in data.records():
            references.append(datasets.references(task, record, where))
            row = other_columns(record, used)
            # the start of the input, for reports and --output; short, so memory stays bounded
            row.setdefault("input", str(record.get(task.input_fields[0], ""))[:INPUT_SHOWN_CHARS])
            others.append(row)
            yield where, record

    started = time.perf_counter()
    with tqdm(total=data.count, unit="example", file=sys.stderr, disable=None, desc=label or task.name) as bar:
        predictions = [labels.rename(task, task.prediction_text(o), label_map) for _, o in run(
            runtime, task.name, records(), model=model, adapter=adapter, options=options, batch_size=batch_size,
            base_of=base_of,
            on_batch=bar.update)]
    return predictions, references, others, time.perf_counter() - started


def check_labels(runtime: Any, task: TaskKind, data: LabelledSource, model: str | None, adapter: str | None,
                 label_map: dict[str, str] | None, base_of: str | None = None) -> None:
    """Before predicting: a model whose head predicts named labels against the data's labels
    (``nlpapp.labels.check``: ``NlpappError`` when they cannot match, a warning for data
    labels it never predicts). Loads the model, which stays cached for the predictions."""
    from .. import labels

    if not data.labels:
        return
    loaded = runtime.model_for(task, model, adapter, base_of)
    if named := labels.model_labels(runtime, loaded):
        labels.check(named, data.labels, label_map or {}, loaded.name)


def evaluate(runtime: Any, task_name: str, data_path: str, *, model: str | None = None, adapter: str | None = None,
             metrics: list[str] | None = None, columns: dict[str, str] | None = None,
             options: dict[str, Any] | None = None, batch_size: int = 8, rounds: int = 1000,
             seed: int = 0, limit: int | None = None, label_map: dict[str, str] | None = None) -> dict[str, Any]:
    """``limit``: the first N examples only. Each prediction carries its example's other
    columns (an ``id``, say), renamed ``input_<name>`` where a name is taken. ``label_map``
    renames the model's labels to the data's (model label -> data label) before scoring."""
    from ..runtime.records import with_columns

    task = runtime.task(task_name)
    names = metrics or list(task.metrics)
    if not names:
        raise NlpappError(f"task {task.name!r} names no default metric; pass --metric")
    if names == ["perplexity"]:
        return perplexity_report(runtime, task, data_path, model, adapter, limit)
    _check_metrics(runtime, names)
    data = LabelledSource(runtime, task, data_path, columns or {}, limit)
    check_labels(runtime, task, data, model, adapter, label_map)
    predictions, references, others, seconds = predict(runtime, task, data, model, adapter, options or {},
                                                       batch_size, label_map=label_map)
    scores, _ = score(runtime, names, predictions, references, rounds, seed,
                      target_language(task, options, adapter))
    model = model or runtime._adapter_base(adapter) or task.default_model  # the model that ran
    report = {"task": task.name, "data": data_path, "model": model, "adapter": adapter,
              "examples": len(predictions), "seconds": seconds, "bootstrap_rounds": rounds, "scores": scores,
              "predictions": [with_columns(o, {"prediction": p, "references": r})
                              for p, r, o in zip(predictions, references, others)]}
    if "classification" in names:
        from .metrics import confusion

        report["confusion"] = confusion(predictions, [r[0] for r in references])
    return report


def compare(runtime: Any, task_name: str, data_path: str, systems: list[str], *, model: str | None = None,
            metrics: list[str] | None = None, columns: dict[str, str] | None = None,
            options: dict[str, Any] | None = None, batch_size: int = 8, rounds: int = 1000,
            seed: int = 0, limit: int | None = None, label_map: dict[str, str] | None = None) -> dict[str, Any]:
    """Two systems, each ``base`` (the model without adapter), an adapter, or a model spec.
    An adapter runs with the task options it was trained with as defaults under
    ``options``; a system without an adapter beside one gets the same (the first adapter's),
    so both decode alike. ``label_map`` renames either system's labels to the data's (names
    a system's model does not have are ignored)."""
    from ..runtime.adapters import with_saved_options

    if len(systems) != 2:
        raise NlpappError("--compare takes two systems, e.g. --compare base,adapters/headlines")
    task = runtime.task(task_name)
    names = metrics or list(task.metrics)
    _check_metrics(runtime, names)
    data = LabelledSource(runtime, task, data_path, columns or {}, limit)
    reports, resamplers = [], []
    resolved = [_system(system, model) for system in systems]
    trained = [adapter for _, adapter in resolved if adapter is not None]
    # "base" beside an adapter is that adapter's base model, as training started from it
    base_ofs = [trained[0] if system == "base" and trained else None for system in systems]
    for (spec, adapter), base_of in zip(resolved, base_ofs):  # both, before either predicts
        check_labels(runtime, task, data, spec, adapter, label_map, base_of)
    for system, (spec, adapter), base_of in zip(systems, resolved, base_ofs):
        # a system without an adapter decodes as the adapter beside it does (its saved options), for a fair match
        chosen = with_saved_options(trained[0], task, options) if adapter is None and trained else options or {}
        predictions, references, _, seconds = predict(runtime, task, data, spec, adapter, chosen, batch_size,
                                                      label=system, base_of=base_of, label_map=label_map)
        scores, resample = score(runtime, names, predictions, references, rounds, seed,
                                 target_language(task, chosen, adapter))
        reports.append({"system": system, "scores": scores, "seconds": seconds})
        resamplers.append(resample)
    p_values = {}
    for name in names:
        p_values.update(bootstrap.paired_p_values(resamplers[0][name], resamplers[1][name], data.count,
                                                  rounds, seed))
    return {"task": task.name, "data": data_path, "examples": data.count, "bootstrap_rounds": rounds,
            "systems": reports, "paired_p_values": p_values}


def _check_metrics(runtime: Any, names: list[str]) -> None:
    """Unknown names fail before any model work (with a did-you-mean)."""
    for name in names:
        if name == "perplexity":
            raise NlpappError("perplexity is computed on raw text alone: pass --metric perplexity by itself")
        runtime.registries.metrics.get(name)


def _system(system: str, model: str | None) -> tuple[str | None, str | None]:
    from ..runtime import adapters

    if system == "base":
        return model, None
    if Path(system).is_dir() and (Path(system) / adapters.MANIFEST).is_file() or system in adapters.known():
        return model, system
    return system, None


def perplexity_report(runtime: Any, task: TaskKind, data_path: str, model: str | None,
                      adapter: str | None, limit: int | None = None) -> dict[str, Any]:
    """Perplexity of a causal LM on raw text, over blocks of the model's window."""
    from ..training.features import lm_blocks
    from ..training.loop import loss_totals
    from ..training.trainer import expand_files, read_texts
    from ..head import Head

    loaded = runtime.model_for(task, model, adapter)
    if loaded.head != Head.CAUSAL_LM:
        raise NlpappError(f"perplexity needs a causal language model; {loaded.name!r} has the head {loaded.head!r}")
    block = min(loaded.max_input_tokens or 1024, 1024)
    blocks = lm_blocks(loaded.tokenizer, read_texts(expand_files([data_path], "--data")), block)[:limit]
    started = time.perf_counter()
    total, count = loss_totals(loaded.trainable_module(), blocks, runtime.registries.heads.get(Head.CAUSAL_LM),
                               loaded.tokenizer.pad_token_id,
                               loaded.device, batch_size=4)
    return {"task": task.name, "data": data_path, "model": model or runtime._adapter_base(adapter) or task.default_model,
            "adapter": adapter, "examples": len(blocks), "seconds": time.perf_counter() - started, "bootstrap_rounds": 0,
            "scores": {"perplexity": {"value": math.exp(total / count), "ci95": None, "metric": "perplexity",
                                      "signature": f"perplexity:block={block}|tokens={count}|base=e",
                                      "higher_is_better": False}}}
