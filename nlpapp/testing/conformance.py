"""The conformance suite every task plugin runs against itself.

Subclass ``TaskConformance`` in a test module, name the subclass ``Test...`` so pytest
collects it, and set the class attributes::

    class TestShoutConformance(TaskConformance):
        task = "shout"
        model = "fake-causal"          # a fake model for the inference checks
        tiny_family = "causal-lm"      # a tiny real model to train; None skips training
        examples = [{"text": "hi", "target": "HI"}, {"text": "yo", "target": "YO"}]

It needs the ``runtime`` and ``tiny_model`` fixtures of nlpapp's pytest plugin, which
pytest loads by itself once nlpapp is installed."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..errors import InputError, NlpappError, UnsupportedModelError
from .fake_plugin import FAKES


class TaskConformance:
    task: ClassVar[str]
    model: ClassVar[str]  # a registered (fake) model the task can use
    examples: ClassVar[list[dict[str, Any]]]  # labelled records: input fields and the target field
    options: ClassVar[dict[str, Any]] = {}  # task options for predicting and training
    tiny_family: ClassVar[str | None] = None  # "causal-lm", "seq2seq-lm", "encoder", "extractive-qa", ...

    def _records(self) -> list[tuple[str, dict[str, Any]]]:
        return [(f"example {i + 1}", record) for i, record in enumerate(self.examples)]

    def _outputs(self, runtime: Any, batch_size: int, **kw: Any) -> list[Any]:
        from ..api import run

        options = self.options
        return [o for _, o in run(runtime, self.task, self._records(), model=kw.pop("model", self.model),
                                  options=options, batch_size=batch_size, **kw)]

    def test_examples_validate(self, runtime):
        task = runtime.task(self.task)
        assert len(self.examples) >= 2, "give at least two examples"
        for where, record in self._records():
            item, targets = task.make_example(record, where)
            assert isinstance(item, task.Input)
            assert set(targets) == set(task.target_fields)

    def test_a_missing_or_empty_field_is_a_user_error_naming_it(self, runtime):
        task = runtime.task(self.task)
        record = self.examples[0]
        for field in task.text_fields:
            with pytest.raises(InputError, match=f"example 1: missing field '{field}'"):
                task.make_input({k: v for k, v in record.items() if k != field}, "example 1")
            with pytest.raises(InputError, match=f"example 1: field '{field}' is empty"):
                task.make_input({**record, field: "  "}, "example 1")

    def test_outputs_have_the_declared_types(self, runtime):
        task = runtime.task(self.task)
        outputs = self._outputs(runtime, batch_size=len(self.examples))
        assert len(outputs) == len(self.examples)
        for output in outputs:
            assert isinstance(output, task.Output)
            assert isinstance(task.prediction_text(output), str)
            assert isinstance(task.render(output), str)
            json.dumps(dataclasses.asdict(output))  # --json and --output can write it

    def test_a_batch_equals_one_by_one(self, runtime):
        batched = self._outputs(runtime, batch_size=len(self.examples))
        assert batched == self._outputs(runtime, batch_size=1)

    def test_a_model_of_another_family_is_a_user_error(self, runtime):
        task = runtime.task(self.task)
        others = [name for name, family in FAKES.items() if family not in task.heads]
        if not others:
            pytest.skip("the task takes models of every family")
        with pytest.raises(UnsupportedModelError, match=f"task '{task.name}' cannot use model"):
            self._outputs(runtime, batch_size=2, model=others[0])

    def test_the_task_metrics_score_its_outputs(self, runtime):
        task = runtime.task(self.task)
        predictions = [task.prediction_text(o) for o in self._outputs(runtime, batch_size=4)]
        references = [[str(r[task.target_fields[0]])] for r in self.examples]
        for name in task.metrics:
            result = runtime.registries.metrics.get(name).compute(predictions, references)
            assert result.signature and isinstance(result.signature, str)
            assert all(isinstance(v, float) and math.isfinite(v) for v in result.scores.values())
            assert result.resample(range(len(predictions))) == result.scores

    def _train(self, runtime: Any, tiny_model: Any, folder: Path) -> dict[str, Any]:
        from ..training.config import TrainConfig
        from ..training.trainer import train

        if self.tiny_family is None:
            pytest.skip("no tiny_family to train")
        data = folder / "train.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in self.examples * 2))
        config = TrainConfig(task=self.task, model=str(tiny_model(self.tiny_family)), data=[str(data)],
                             output=str(folder / "adapter"), epochs=1, batch_size=2, save_every=0,
                             max_length=128, options=self.options, holdout=0.0)  # the step, not the selection
        return train(runtime, config, show_progress=False)

    def test_a_training_step_runs(self, runtime, tiny_model, tmp_path):
        manifest = self._train(runtime, tiny_model, tmp_path)
        assert manifest["metrics"]["steps"] >= 1
        assert math.isfinite(manifest["metrics"]["final_loss"])

    def test_an_adapter_round_trips(self, runtime, tiny_model, tmp_path):
        from ..runtime import adapters

        self._train(runtime, tiny_model, tmp_path)
        output = str(tmp_path / "adapter")
        # the manifest names the task as registered, whichever of its names ``task`` is
        assert adapters.read_manifest(adapters.resolve(output))["task"] == runtime.task(self.task).name
        outputs = self._outputs(runtime, batch_size=2, model=None, adapter=output)
        assert len(outputs) == len(self.examples)
        from . import tiny

        other_base = tiny.build(self.tiny_family, tmp_path / "other-base", seed=1)  # same shape, other weights
        with pytest.raises(NlpappError, match="was trained on"):  # an adapter is tied to its base
            self._outputs(runtime, batch_size=2, model=str(other_base), adapter=output)
