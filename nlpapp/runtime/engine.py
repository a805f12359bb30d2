"""The batched inference engine every task shares.

Inputs are read in windows; inside a window they are sorted by length so each batch holds
inputs of similar size (less padding; for one-pass models a long tail of lengths gets
smaller batches), run under ``torch.inference_mode`` by the model
backend, and yielded back in input order as soon as the window is done. Memory stays
bounded by the window, so an input file larger than memory streams through."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

from ..model import Model, StreamCallback
from ..task import TaskKind

WINDOW_BATCHES = 16  # batches per sorting window: more sorts better, streams later
# For models that read their input in one pass, a batch also ends early when the next (longer)
# input would pad the shortest by more than this: on a long tail of lengths, smaller batches of
# long inputs waste less than full padded ones. Generation is left alone: there every batch pays
# a pass per new token, so fewer, fuller batches win.
MAX_PAD_RATIO = 1.05  # 1.25 gave ragged/uniform 0.79, 1.1 gave 0.83, 1.05 0.88-0.95 (bench W2)
PAD_ALLOWANCE_CHARS = 100  # below this much padding, a fuller batch is worth more than the waste


class Predictor:
    def __init__(self, task: TaskKind, model: Model, options: Any, batch_size: int = 8,
                 one_pass: bool = False):
        """``one_pass``: the model's head reads its input in one pass (``ModelHead.one_pass``),
        so a batch also ends at the padding limit."""
        if batch_size < 1:
            from ..errors import NlpappError

            raise NlpappError(f"--batch-size must be at least 1, got {batch_size}")
        task.check_model(model)
        self.task, self.model, self.batch_size = task, model, batch_size
        self.options = task.parse_options(options)  # a mapping or the task's Options
        self.limit_padding = one_pass

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

    def _batches(self, window: list[Any]) -> list[list[int]]:
        """Indices of ``window`` in batches of similar length, shortest first."""
        lengths = [self.task.input_length(item) for item in window]
        batches: list[list[int]] = []
        for i in sorted(range(len(window)), key=lambda i: lengths[i]):
            current = batches[-1] if batches else None
            if current and len(current) < self.batch_size and (not self.limit_padding or lengths[i] <= max(
                    lengths[current[0]] * MAX_PAD_RATIO, lengths[current[0]] + PAD_ALLOWANCE_CHARS)):
                current.append(i)
            else:
                batches.append([i])
        return batches

    def _run_window(self, window: list[Any], stream: StreamCallback | None,
                    on_batch: Callable[[int], None] | None) -> Iterator[tuple[Any, Any]]:
        outputs: list[Any] = [None] * len(window)
        for indices in self._batches(window):
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
