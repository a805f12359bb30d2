"""One exception hierarchy. ``NlpappError`` and its subclasses are *user* errors:
the CLI prints their message on one line and exits non-zero, without a traceback.
Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NlpappError(Exception):
    """A mistake the user can fix; the message says what is wrong and what to do."""

    exit_code = 1


class UnknownNameError(NlpappError, LookupError):
    """A task, model, metric or other registered name that does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else (
            f"known: {', '.join(known)}" if known else "none are registered")
        super().__init__(f"unknown {kind} {name!r}; {hint}")
        self.name = name
        self.suggestions = close


class DuplicateNameError(NlpappError):
    """Two plugins registered the same name."""


class PluginError(NlpappError):
    """A plugin failed to import, validate or register, raised inside a hook or a task's
    ``predict``, or (in strict mode) had any problem at all: a conflict, a slow hook."""


class InputError(NlpappError):
    """Bad input data: missing file, malformed line, missing column, empty text."""


class MetricInputError(InputError):
    """Predictions and references a metric cannot score: unequal counts, none at all, or a
    value that is not text (None, NaN). The message names the metric and the example."""


class MetricDependencyError(NlpappError):
    """A metric setting needs a package that is not installed; the message says what to
    ``pip install``."""


class MissingFieldError(InputError):
    """A record lacks fields the task needs. It names them (``inputs``, ``targets``) and the
    task, so a check over a whole file can say once that a column is missing everywhere."""

    def __init__(self, message: str, task: object, inputs: Iterable[str] = (), targets: Iterable[str] = ()):
        super().__init__(message)
        self.task, self.inputs, self.targets = task, tuple(inputs), tuple(targets)


class ModelLoadError(NlpappError):
    """A model spec that cannot be resolved or loaded."""


class UnsupportedModelError(NlpappError):
    """A model whose family the task cannot use."""


class UnsafeModelError(ModelLoadError):
    """Pickle weights or remote code, refused unless the user opts in."""


class TrainingError(NlpappError):
    """A training run that cannot go on: its loss, gradients or weights stopped being
    finite, or memory or disk ran out. Nothing is written to the output (an existing one is
    left as it was); checkpoints already written are kept; the run record says ``failed``."""


class TrainingInterrupted(NlpappError):
    """SIGINT or SIGTERM stopped a training run after the step it was in; a checkpoint of
    that step resumes it (``--resume``). The exit status is 128 + the signal's number (130
    for SIGINT, 143 for SIGTERM), and the run record says ``interrupted``."""

    run_status = "interrupted"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
