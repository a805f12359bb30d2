"""The batched inference engine every task shares.

Inputs are read in windows; inside a window they are sorted by length so each batch holds
inputs of similar size (less padding), run under ``torch.inference_mode`` by the model
backend, and yielded back in input order as soon as the window is done. Memory stays
bounded by the window, so an input file larger than memory streams through."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

from ..model import Model, StreamCallback
from ..task import TaskKind

WINDOW_BATCHES = 16  # batches per sorting window: more sorts better, streams later


class Predictor:
    def __init__(self, task: TaskKind, model: Model, options: dict[str, Any], batch_size: int = 8):
        if batch_size < 1:
            from ..errors import NlpappError

            raise NlpappError(f"--batch-size must be at least 1, got {batch_size}")
        task.check_model(model)
        self.task, self.model, self.options, self.batch_size = task, model, options, batch_size

    def predict(self, inputs: Iterable[Any], stream: StreamCallback | None = None,
                on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[Any, Any]]:
        """Yield ``(input, output)`` pairs in input order. ``stream`` is used only when the
        whole input is a single item; ``on_batch(n)`` is told after each batch of n."""
        iterator = iter(inputs)
        window_size = self.batch_size * WINDOW_BATCHES
        window = list(itertools.islice(iterator, window_size))
        single = len(window) == 1  # a window holds many, so one item means the input was one
        while window:
            yield from self._run_window(window, stream if single else None, on_batch)
            window = list(itertools.islice(iterator, window_size))

    def _run_window(self, window: list[Any], stream: StreamCallback | None,
                    on_batch: Callable[[int], None] | None) -> Iterator[tuple[Any, Any]]:
        order = sorted(range(len(window)), key=lambda i: self.task.input_length(window[i]))
        outputs: list[Any] = [None] * len(window)
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            batch = [window[i] for i in indices]
            results = self.task.predict(self.model, batch, self.options, stream=stream)
            if len(results) != len(batch):
                raise RuntimeError(f"task {self.task.name!r} returned {len(results)} outputs "
                                   f"for {len(batch)} inputs")
            for i, result in zip(indices, results):
                outputs[i] = result
            if on_batch:
                on_batch(len(batch))
        yield from zip(window, outputs)
