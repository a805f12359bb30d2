"""The batched inference engine every task shares.

Inputs are read in windows; inside a window they are sorted by length so each batch holds
inputs of similar size (less padding; for one-pass models a long tail of lengths gets
smaller batches), run under ``torch.inference_mode`` by the model
backend, and yielded back in input order as soon as the window is done. Memory stays
bounded by the window, so an input file larger than memory streams through.

A task's ``predict`` is plugin code: an exception from it becomes a one-line ``PluginError``
naming the plugin and the task (an ``NlpappError`` it raises passes through). Running out of
memory on a batch (``torch.OutOfMemoryError``, ``MemoryError``) retries that batch once in
halves, and runs every later batch at the halved size, with one warning saying which
``--batch-size`` to pass; out of memory again is a one-line error saying what to do."""

from __future__ import annotations

import itertools
import sys
from typing import Any, Callable, Iterable, Iterator

from .. import log
from ..errors import NlpappError, PluginError
from ..model import Model, StreamCallback
from ..registry import owner_of
from .device import is_out_of_memory
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
            raise NlpappError(f"--batch-size must be at least 1, got {batch_size}")
        task.check_model(model)
        self.task, self.model, self.batch_size = task, model, batch_size
        self.options = task.parse_options(options)  # a mapping or the task's Options
        self.limit_padding = one_pass
        self.halved = False  # set when out of memory halved the batch size

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
            results = self._predict_batch(batch, stream)
            for i, result in zip(indices, results):
                outputs[i] = result
            if on_batch:
                on_batch(len(batch))
        yield from zip(window, outputs)

    def _predict_batch(self, batch: list[Any], stream: StreamCallback | None) -> list[Any]:
        """The task's outputs for ``batch``, in pieces of at most ``batch_size`` (smaller than
        the batch once out of memory halved it).

        :raises NlpappError: out of memory after halving, or on a batch of one.
        :raises PluginError: the task's ``predict`` raised, or returned the wrong number of outputs."""
        try:
            return [r for start in range(0, len(batch), self.batch_size)
                    for r in self._predict(batch[start:start + self.batch_size], stream)]
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            size = min(len(batch), self.batch_size)
            if size == 1:
                raise NlpappError(f"out of memory running task {self.task.name!r} on a single input: shorten "
                                  "the input, use a smaller model, or --device cpu") from None
            if self.halved:
                raise NlpappError(f"out of memory running task {self.task.name!r} on a batch of {size}: pass a "
                                  f"smaller --batch-size (e.g. {size // 2}), shorter inputs, a smaller model, or "
                                  "--device cpu") from None
        _free_accelerator_memory()  # outside the except block: its traceback held the batch's tensors
        self.halved, self.batch_size = True, max(1, size // 2)
        log.warn(f"out of memory on a batch of {size}; running batches of {self.batch_size} from now on "
                 f"(pass --batch-size {self.batch_size} to start there)")
        return self._predict_batch(batch, stream)

    def _predict(self, batch: list[Any], stream: StreamCallback | None) -> list[Any]:
        try:
            results = self.task.predict(self.model, batch, self.options, stream=stream)
        except NlpappError:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            raise PluginError(f"{self._who()} failed in predict: {type(exc).__name__}: {exc}") from exc
        if not isinstance(results, (list, tuple)) or len(results) != len(batch):
            got = f"{len(results)} outputs" if isinstance(results, (list, tuple)) else f"a {type(results).__name__}"
            raise PluginError(f"{self._who()} returned {got} from predict for {len(batch)} inputs; "
                              "predict returns a list with one output per input")
        return list(results)

    def _who(self) -> str:
        plugin = owner_of(self.task)
        return f"plugin {plugin!r} (task {self.task.name!r})" if plugin else f"task {self.task.name!r}"


def _free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
