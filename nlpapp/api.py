"""The library: ``Runtime`` and its verbs. The CLI is a thin layer over these; so is any
Python user::

    import nlpapp

    runtime = nlpapp.Runtime.create()
    [out] = runtime.run("sentiment", ["A wonderful film."])
    result = runtime.evaluate(nlpapp.EvalConfig(task="sentiment", data="sentiment-sample"))
    print(result.scores["accuracy"].value, result.scores["accuracy"].ci95)

Each verb takes a typed config (``nlpapp.configs``, ``TrainConfig``) and returns a typed
result, and ``run_file``, ``train``, ``evaluate`` and ``compare`` write a run record (its id
is ``result.run``), exactly as the CLI commands do."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from .configs import (AdapterInfo, CompareConfig, CompareResult, EvalConfig, EvalResult, MergeResult, RunFileConfig,
                      RunFileResult, Score, SystemScores, TrainResult)
from .model import Model, StreamCallback
from .options import TaskOptions
from .plugins import PluginSet, load_plugins
from .runtime.engine import Predictor
from .runtime.store import ModelStore
from .task import TaskKind
from .types import LoadOptions

if TYPE_CHECKING:
    from .optimization.optimize import OptimizeResult
    from .optimization.tradeoff import Tradeoff
    from .training.config import TrainConfig

Inputs = str | Mapping[str, Any] | Iterable[str | Mapping[str, Any]]


@dataclass
class Runtime:
    """Plugins, registries and a per-process model cache, built once and reused by every verb."""

    plugins: PluginSet
    load_options: LoadOptions = field(default_factory=LoadOptions)

    def __post_init__(self) -> None:
        self.models = ModelStore(self.plugins.hook, self.plugins.registries.models, self.load_options,
                                 self.plugins.registries.heads, self.plugins.registries.backends)
        self.models.backend()  # an unknown --backend is refused here, before any work

    @classmethod
    def create(cls, load_options: LoadOptions | None = None, *, device: str = "auto", dtype: str = "auto",
               allow_pickle: bool = False, trust_remote_code: bool = False, revision: str | None = None,
               backend: str = "auto", **plugin_args: Any) -> "Runtime":
        """Load the plugins and make a runtime. ``device`` (auto, cpu, cuda, cuda:N) and
        ``dtype`` (auto, float32, bfloat16, float16) apply to every model it loads;
        ``revision`` to hub models (a commit hash is required with ``trust_remote_code``);
        ``backend`` (auto, torch, or a plugin's, e.g. llamacpp) runs inference;
        ``plugin_args`` go to ``nlpapp.plugins.load_plugins``."""
        options = load_options or LoadOptions(device=device, dtype=dtype, allow_pickle=allow_pickle,
                                              trust_remote_code=trust_remote_code, revision=revision,
                                              backend=backend)
        return cls(load_plugins(**plugin_args), options)

    @property
    def registries(self):  # noqa: ANN201 - the Registries dataclass
        return self.plugins.registries

    def task(self, name: str) -> TaskKind:
        """A registered task kind by name or alias (``UnknownNameError`` with a did-you-mean)."""
        return self.registries.tasks.get(name)

    # --- verbs ---------------------------------------------------------------------------

    def run(self, task: str, inputs: Inputs, *, model: str | None = None, adapter: str | None = None,
            options: Mapping[str, Any] | TaskOptions | None = None, batch_size: int = 8) -> list[Any]:
        """Run ``task`` on texts (its main input field) or records (dicts of its input
        fields); returns one typed ``Output`` per input, in order. A single text or record
        gives a list of one. With ``adapter``, the task options it was trained with (its
        manifest's ``"options"``) are the defaults; ``options`` (a mapping) overrides them
        name by name, while a ``TaskOptions`` instance is used as it is. Raises
        ``InputError`` for a bad input and ``OptionError`` for an unknown or ill-typed
        option, before any model loads."""
        kind = self.task(task)
        items = [inputs] if isinstance(inputs, (str, Mapping)) else list(inputs)
        records = [(f"input {n}", {kind.input_fields[0]: item} if isinstance(item, str) else dict(item))
                   for n, item in enumerate(items, start=1)]
        for where, record in records:  # every input checked before a model loads
            kind.make_input(record, where)
        return [output for _, output in run(self, kind.name, records, model=model, adapter=adapter, options=options,
                                            batch_size=batch_size)]

    def run_file(self, config: RunFileConfig, *, on_batch: Callable[[int], None] | None = None,
                 on_output: Callable[[Any, Any, dict[str, Any]], None] | None = None,
                 records: Iterable[tuple[str, dict[str, Any]]] | None = None,
                 stream: StreamCallback | None = None) -> RunFileResult:
        """Run a task over a file (or a registered dataset): every record is checked first,
        outputs stream to ``config.output`` (JSONL, each input's other columns kept), which is
        replaced only when every input succeeded; without an output each ``(input, output,
        other columns)`` goes to ``on_output`` as it is ready. ``records`` (``(where,
        record)`` pairs) stand in for reading ``config.input``; ``stream`` receives a single
        input's generated text as it is made. Writes a run record."""
        from .run_file import run_file

        return run_file(self, config, on_batch, on_output, records, stream)

    def train(self, config: "TrainConfig", *, resume: bool = False, overwrite: bool = False,
              progress: bool = False) -> TrainResult:
        """Fine-tune with LoRA (or fully) and write the adapter folder with its manifest;
        ``resume`` continues an interrupted run exactly. Writes a run record (and report)."""
        import os

        from . import runs
        from .training.trainer import train

        if config.model is None:  # the task's default model, as on the command line
            config = dataclasses.replace(config, model=self.task(config.task).default_model)
        main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, one process records
        if not main_process:
            manifest = train(self, config, resume=resume, overwrite=overwrite, load_options=self.load_options,
                             show_progress=False)
            return TrainResult(output=config.output, manifest=manifest)
        with runs.recording("train", self.task(config.task).name, _recorded(config, self.load_options),
                            config.data + config.eval_data) as record:
            manifest = train(self, config, resume=resume, overwrite=overwrite, load_options=self.load_options,
                             show_progress=progress)
            record.metrics = manifest["metrics"]
            record.extra = {"model": manifest["base_model"], "adapter": {"output": config.output,
                                                                         "kind": manifest["kind"]}}
            if manifest.get("verdict"):
                record.extra["verdict"] = manifest["verdict"]
        return TrainResult(run=record.id, report=_path(record.report), output=config.output, manifest=manifest)

    def evaluate(self, config: EvalConfig) -> EvalResult:
        """Score a task on labelled data with its metrics (or ``config.metrics``), each with
        a 95% bootstrap interval and a signature. Writes a run record, its predictions and a
        report; ``config.output`` also gets the predictions as JSONL."""
        from . import runs
        from .evaluation.evaluate import evaluate

        task = self.task(config.task)
        if config.output is not None:
            check_writable(Path(config.output), [config.data, config.task_file])
        with runs.recording("eval", task.name, _recorded(config, self.load_options), [config.data]) as record:
            report = evaluate(self, task.name, config.data, model=config.model, adapter=config.adapter,
                              metrics=config.metrics or None, columns=config.columns, options=config.options,
                              batch_size=config.batch_size, rounds=config.bootstrap, seed=config.bootstrap_seed,
                              limit=config.limit, label_map=config.label_map)
            record.metrics = report["scores"]
            record.extra = {**runs.model_identity(self.models, report["model"], config.adapter),
                            "examples": report["examples"], "device": self.load_options.device}
            if report.get("confusion"):
                record.extra["confusion"] = report["confusion"]
            record.save_predictions(report.get("predictions", []))
            if config.output is not None:
                write_jsonl(Path(config.output), report["predictions"])
        return EvalResult(run=record.id, report=_path(record.report), task=report["task"], data=report["data"],
                          model=report["model"], adapter=report["adapter"], examples=report["examples"],
                          seconds=report["seconds"], bootstrap_rounds=report["bootstrap_rounds"],
                          scores=_scores(report["scores"]), predictions=report.get("predictions", []),
                          confusion=report.get("confusion"))

    def compare(self, config: CompareConfig) -> CompareResult:
        """Two systems (``base``, an adapter, or a model) on the same examples: each one's
        scores with intervals, and paired bootstrap p-values. Writes a run record and report."""
        from . import runs
        from .evaluation.evaluate import compare

        task = self.task(config.task)
        with runs.recording("eval", task.name, _recorded(config, self.load_options), [config.data]) as record:
            report = compare(self, task.name, config.data, config.systems, model=config.model,
                             metrics=config.metrics or None, columns=config.columns, options=config.options,
                             batch_size=config.batch_size, rounds=config.bootstrap, seed=config.bootstrap_seed,
                             limit=config.limit, label_map=config.label_map)
            record.metrics = {f"{s['system']}:{name}": v for s in report["systems"] for name, v in s["scores"].items()}
            record.extra = {"examples": report["examples"], "paired_p_values": report["paired_p_values"],
                            "device": self.load_options.device}
        return CompareResult(run=record.id, report=_path(record.report), task=report["task"], data=report["data"],
                             examples=report["examples"], bootstrap_rounds=report["bootstrap_rounds"],
                             systems=[SystemScores(s["system"], _scores(s["scores"]), s["seconds"])
                                      for s in report["systems"]],
                             paired_p_values=report["paired_p_values"])

    def merge(self, adapter: str, output: str | Path, *, overwrite: bool = False,
              dequantize: bool = False) -> MergeResult:
        """Merge a LoRA adapter into its base and write a standalone model folder; the
        cached base model keeps serving the base weights. An adapter trained on a quantized
        base (QLoRA) is refused unless ``dequantize`` (merged into the base unquantized)."""
        from .training.merge import merge

        report = merge(self.models, adapter, Path(output), overwrite, dequantize)
        return MergeResult(report["adapter"], report["output"], report["max_abs_diff"], report["probe_texts"])

    def quantize(self, model: str, method: str, output: str | Path, *, overwrite: bool = False,
                 measure: bool = True, task: str | None = None, data: str | None = None,
                 limit: int | None = None) -> "OptimizeResult":
        """Write ``model`` with its linear layers quantized by ``method`` (int8, int8-dynamic on
        CPU or GPU; int4, nf4, llm-int8 on a CUDA GPU) to ``output``, a folder ``--model``
        and transformers' ``from_pretrained`` reload. With ``measure``, the trade-off against
        the original (``tradeoff``) is added to the result, the folder's record and a run
        record. Raises ``NlpappError`` where the method does not run on this device."""
        from .optimization.optimize import quantize

        return self._optimized(lambda: quantize(self, model, method, Path(output), overwrite=overwrite),
                               measure, task, data, limit)

    def prune(self, model: str, sparsity: float, output: str | Path, *, structured: str | None = None,
              overwrite: bool = False, measure: bool = True, task: str | None = None, data: str | None = None,
              limit: int | None = None) -> "OptimizeResult":
        """Write ``model`` pruned to ``output``: the ``sparsity`` share of each linear layer's
        smallest weights zeroed, or with ``structured="heads"`` that share of every layer's
        attention heads removed (BERT-style encoders; the layers shrink). ``measure`` as
        for ``quantize``. Raises ``NlpappError`` for a sparsity outside (0, 1)."""
        from .optimization.optimize import prune

        return self._optimized(lambda: prune(self, model, sparsity, Path(output), structured=structured,
                                             overwrite=overwrite), measure, task, data, limit)

    def tradeoff(self, original: str, optimized: str, *, task: str | None = None, data: str | None = None,
                 limit: int | None = None, rounds: int = 2) -> "Tradeoff":
        """Size on disk, peak memory and speed of two models side by side (each measured in a
        process of its own, in ``rounds`` interleaved rounds), and with ``task`` and ``data``
        the task's metric on that held-out data with 95% intervals."""
        from .optimization.tradeoff import compare

        return compare(original, optimized, self.load_options, task=task, data=data, limit=limit, rounds=rounds)

    def _optimized(self, write: Callable[[], "OptimizeResult"], measure: bool, task: str | None,
                   data: str | None, limit: int | None) -> "OptimizeResult":
        from . import runs
        from .errors import NlpappError
        from .optimization.optimize import record_tradeoff

        if bool(task) != bool(data):
            raise NlpappError("quality needs both a task and held-out data: pass --task and --eval-data together")
        if task and not measure:
            raise NlpappError("--task and --eval-data score the models, which --no-measure skips; drop one or the other")
        if task:  # an unknown task or a bad data file is refused before any work
            from .training.trainer import read_examples

            read_examples(self, self.task(task), [data], {})
        with runs.recording("optimize", task or "", {"device": self.load_options.device,
                                                     "dtype": self.load_options.dtype},
                            [data] if data else []) as record:
            result = write()
            record.extra = {"source": result.source, "output": str(result.output), "method": result.method,
                            **result.details}
            if measure:
                try:
                    result.tradeoff = self.tradeoff(result.source, str(result.output), task=task, data=data,
                                                    limit=limit)
                except NlpappError as exc:
                    raise NlpappError(f"{result.output} is written, but measuring it failed: {exc}; measure it "
                                      f"again with Runtime.tradeoff, or rerun with --overwrite") from None
                record_tradeoff(result.output, result.tradeoff)
                record.extra["tradeoff"] = result.tradeoff.as_dict()
                record.metrics = {name: score for name, score in result.tradeoff.optimized.scores.items()}
        return result

    def adapters(self) -> list[AdapterInfo]:
        """The remembered adapters (those ``train`` wrote), by name."""
        from .runtime import adapters

        return [self.adapter(name) for name in adapters.known()]

    def adapter(self, name_or_path: str) -> AdapterInfo:
        """One adapter by name or folder, with its manifest."""
        from .runtime import adapters

        folder = adapters.resolve(name_or_path)
        manifest = adapters.read_manifest(folder)
        known = {p.resolve(): n for n, p in adapters.known().items()}
        return AdapterInfo(name=known.get(folder.resolve(), folder.name), path=folder, kind=manifest["kind"],
                           task=manifest["task"], head=adapters.head_of(manifest),
                           base_model=manifest["base_model"]["spec"], labels=tuple(manifest.get("labels") or ()),
                           scores=manifest["metrics"], manifest=manifest)

    def remove_adapter(self, name_or_path: str) -> Path:
        """Delete an adapter's folder and forget its name; returns the folder."""
        from .runtime import adapters

        return adapters.remove(name_or_path)

    def runs(self) -> list[dict[str, Any]]:
        """Every run record, oldest first (``nlpapp runs list``)."""
        from . import runs

        return runs.all_runs()

    def run_record(self, ref: str) -> dict[str, Any]:
        """One run record by id, unique prefix or suffix, or ``latest``."""
        from . import runs

        return runs.load(ref)

    # --- models ------------------------------------------------------------------------

    def model_for(self, task: TaskKind, spec: str | None = None, adapter: str | None = None,
                  base_of: str | None = None) -> Model:
        """The model ``task`` runs on: ``spec`` (default: the adapter's base, else the task's
        default) with ``adapter`` active. ``base_of`` names an adapter whose base model is
        wanted as it was before training: where the task cannot use the base's own head (a
        bare encoder for a tagger), the adapter's head on it, freshly initialised (seed 0)."""
        if base_of is not None:
            return self._base_of(task, spec, base_of)
        if adapter is not None:
            self._check_adapter_task(task, adapter)
        model = self.models.load(spec or self._adapter_base(adapter) or task.default_model, adapter=adapter)
        task.check_model(model)
        return model

    def _check_adapter_task(self, task: TaskKind, adapter: str) -> None:
        """An adapter is for the task it was trained on (or that task under another name)."""
        from .errors import NlpappError
        from .runtime import adapters

        trained_for = adapters.read_manifest(adapters.resolve(adapter))["task"]
        if self.registries.tasks.canonical(trained_for) != task.name:
            raise NlpappError(f"adapter {adapter} was trained for task {trained_for!r}, not {task.name!r}; "
                              f"use it with nlpapp run {trained_for}")

    def _base_of(self, task: TaskKind, spec: str | None, adapter: str) -> Model:
        from .runtime import adapters

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
        from .runtime import adapters

        return adapters.read_manifest(adapters.resolve(adapter))["base_model"]["spec"]


def run(runtime: Runtime, task_name: str, records: Iterable[tuple[str, dict[str, Any]]], *,
        model: str | None = None, adapter: str | None = None, options: Mapping[str, Any] | TaskOptions | None = None,
        batch_size: int = 8, base_of: str | None = None,
        stream: StreamCallback | None = None, on_batch: Callable[[int], None] | None = None,
        ) -> Iterator[tuple[Any, Any]]:
    """Run a task over ``(where, record)`` pairs; yields ``(input, output)`` in input order.

    Records are validated into the task's typed inputs as they stream in, so a bad line
    fails with its file and line number. ``base_of``: run the base model of that adapter,
    as it was before training (see ``Runtime.model_for``). With ``adapter``, the options it
    was trained with are the defaults that ``options`` overrides
    (``nlpapp.runtime.adapters.with_saved_options``)."""
    task = runtime.task(task_name)
    parsed = task.parse_options(options)  # a misspelled or ill-typed option fails before a model loads
    if adapter is not None:
        from .runtime.adapters import with_saved_options

        parsed = task.parse_options(with_saved_options(adapter, task, options))
    loaded = runtime.model_for(task, model, adapter, base_of)
    predictor = Predictor(task, loaded, parsed, batch_size, one_pass=runtime.one_pass(loaded))
    inputs = (task.make_input(record, where) for where, record in records)
    return predictor.predict(inputs, stream=stream, on_batch=on_batch)


def check_writable(path: Path, inputs: Iterable[str | None] = ()) -> None:
    """Fail before any model work, with ``NlpappError``, if ``path`` cannot be written or
    is one of ``inputs`` by any name (``./x`` for ``x``, a symbolic or hard link): writing
    the predictions there would replace what they are made from."""
    import os

    from .errors import NlpappError

    for source in inputs:
        if source and source != "-" and path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise NlpappError(f"cannot write {path}: it is the input {source}; write the predictions to another file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NlpappError(f"cannot write {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise NlpappError(f"cannot write {path}: it is a folder")
    if not os.access(path.parent, os.W_OK):
        raise NlpappError(f"cannot write {path}: no permission to write in {path.parent}")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Stream rows into a scratch file beside ``path``, renamed over it only when all were
    written: a failure never leaves a half-written file. Returns the number of rows."""
    import json

    from .runtime.atomic import atomic_file

    count = 0
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _scores(raw: dict[str, dict[str, Any]]) -> dict[str, Score]:
    return {name: Score.from_dict(value) for name, value in raw.items()}


def _path(value: Any) -> str | None:
    return str(value) if value else None


def _recorded(config: Any, load: LoadOptions) -> dict[str, Any]:
    """A config as the run record keeps it, with how the model was loaded."""
    return {**dataclasses.asdict(config), "device": load.device, "dtype": load.dtype}
