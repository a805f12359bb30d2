"""``nlpapp optimize``: quantize or prune a model into a new folder, and show what it costs
and gains against the original (``nlpapp.optimization``)."""

from __future__ import annotations

from typing import Any, Callable

import click

from .common import device_options, load_settings, trust_options
from .render import echo_json, table
from .state import state


@click.group()
def optimize() -> None:
    """Make a model smaller or faster: quantize, prune (distil with nlpapp train --teacher)."""


def _shared(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every optimize command takes: output, measuring, device and trust."""
    options = [
        click.Option(["--output", "-o"], required=True, metavar="DIR",
                     help="Folder for the optimized model (then --model DIR anywhere)."),
        click.Option(["--overwrite"], is_flag=True, help="Replace --output if it exists."),
        click.Option(["--no-measure", "no_measure"], is_flag=True,
                     help="Skip the side-by-side measurement (size, peak memory, speed, quality)."),
        click.Option(["--task"], metavar="TASK", help="With --eval-data: score this task on held-out data, "
                                                      "original and optimized, with 95% intervals."),
        click.Option(["--eval-data"], metavar="FILE|DATASET", help="Held-out labelled data for --task."),
        click.Option(["--limit"], type=click.IntRange(min=1), metavar="N", help="Score the first N examples only."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON."),
        *device_options(backend=False), *trust_options(),
    ]
    command.params.extend(options)
    return command


@optimize.command()
@click.argument("model")
@click.option("--method", required=True, metavar="METHOD",
              help="int8 (weight-only) or int8-dynamic (torchao; CPU or GPU); int4 (torchao), nf4 or llm-int8 "
                   "(bitsandbytes) on a CUDA GPU.")
def quantize(model: str, method: str, **kw: Any) -> None:
    """Quantize MODEL's linear layers and save it to --output (transformers reloads it too).

    \b
        nlpapp optimize quantize smollm2 --method int8 --output models/smollm2-int8
        nlpapp run generation --model models/smollm2-int8 "Hello"
    """
    runtime = state().runtime(**load_settings(kw))
    _report(runtime.quantize(model, method, kw["output"], overwrite=kw["overwrite"], measure=not kw["no_measure"],
                             task=kw["task"], data=kw["eval_data"], limit=kw["limit"]), kw["as_json"])


@optimize.command()
@click.argument("model")
@click.option("--sparsity", required=True, type=float, metavar="S",
              help="Share removed, between 0 and 1: of each layer's weights, or with --structured heads of its "
                   "attention heads.")
@click.option("--structured", type=click.Choice(["heads"]),
              help="Remove whole attention heads (BERT-style encoders), which shrinks and speeds the model; "
                   "without it, the smallest weights are zeroed.")
def prune(model: str, sparsity: float, structured: str | None, **kw: Any) -> None:
    """Prune MODEL and save it to --output.

    \b
        nlpapp optimize prune minilm --sparsity 0.5 --output models/minilm-pruned
        nlpapp optimize prune minilm --sparsity 0.5 --structured heads --output models/minilm-heads
    """
    runtime = state().runtime(**load_settings(kw))
    _report(runtime.prune(model, sparsity, kw["output"], structured=structured, overwrite=kw["overwrite"],
                          measure=not kw["no_measure"], task=kw["task"], data=kw["eval_data"], limit=kw["limit"]),
            kw["as_json"])


@optimize.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def methods(as_json: bool) -> None:
    """List the quantization methods, the library that runs each, and where."""
    from ..optimization.quantize import METHODS

    if as_json:
        return echo_json([{"name": m.name, "library": m.library, "devices": list(m.devices),
                           "description": m.description} for m in METHODS.values()])
    click.echo(table([[m.name, m.library, ", ".join(m.devices), m.description] for m in METHODS.values()],
                     ["METHOD", "LIBRARY", "DEVICES", "WHAT IT DOES"]))


for _command in (quantize, prune):
    _shared(_command)


def _report(result: Any, as_json: bool) -> None:
    from ..optimization.tradeoff import table as tradeoff_rows

    if as_json:
        return echo_json({"output": str(result.output), "source": result.source, "method": result.method,
                          "details": result.details,
                          "tradeoff": result.tradeoff.as_dict() if result.tradeoff else None})
    click.echo(f"wrote {result.output} ({result.method} of {result.source}); use it with --model {result.output}")
    if result.tradeoff is not None:
        rows = tradeoff_rows(result.tradeoff)
        click.echo(table(rows[1:], [h.upper() or "MEASURE" for h in rows[0]]))
