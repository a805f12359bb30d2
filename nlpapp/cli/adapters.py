"""``nlpapp adapters``: list, show, verify, merge and remove trained adapters."""

from __future__ import annotations

from pathlib import Path

import click

from .render import confirm, echo_json, table
from .state import state


@click.group()
def adapters() -> None:
    """Manage trained adapters (nlpapp train writes them and remembers them by folder name)."""


@adapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_adapters(as_json: bool) -> None:
    """List remembered adapters: name, task, head, base model, steps, final loss."""
    infos = state().runtime().adapters()
    if as_json:
        return echo_json([info.as_dict() for info in infos])
    if not infos:
        click.echo("no adapters yet; nlpapp train TASK --output DIR makes one")
        return
    rows = [[i.name, i.kind, i.task, i.head, i.base_model, str(i.scores.get("steps")),
             f"{i.scores.get('final_loss', float('nan')):.4g}", str(i.path)] for i in infos]
    click.echo(table(rows, ["NAME", "KIND", "TASK", "HEAD", "BASE MODEL", "STEPS", "LOSS", "PATH"]))


@adapters.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def show(name: str, as_json: bool) -> None:
    """Describe an adapter (NAME or folder): task, head, base model, labels, training and scores."""
    info = state().runtime().adapter(name)
    if as_json:
        return echo_json(info.manifest)
    manifest = info.manifest
    base = manifest["base_model"]
    click.echo(info.path)
    click.echo(f"  task {info.task}, {info.kind} adapter on a {info.head} head")
    click.echo(f"  base model {base['spec']} ({base['model_type']}, fingerprint {base['fingerprint']})")
    if info.labels:
        click.echo(f"  labels {', '.join(info.labels)}")
    config = manifest["config"]
    click.echo(f"  trained {config['epochs']} epochs at lr {config['lr']} on {', '.join(manifest['data']['files'])}")
    click.echo("  scores " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in info.scores.items()))


@adapters.command()
@click.argument("name")
def verify(name: str) -> None:
    """Check adapter NAME's files against the sha256 its manifest records, without loading it."""
    from ..runtime.adapters import check_files

    info = state().runtime().adapter(name)
    check_files(info.path, info.manifest)  # a file that does not match: one error line naming it
    listed = info.manifest.get("files")
    if listed is None:
        click.echo(f"{info.path}: its files are whole, but it was trained before nlpapp recorded their hashes, "
                   "so they cannot be checked against the manifest")
    else:
        click.echo(f"{info.path}: {len(listed)} files match the manifest")


@adapters.command()
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the merged model.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output.")
@click.option("--dequantize", is_flag=True, help="For an adapter trained on a quantized base (--quantize): merge "
                                                 "into the base loaded unquantized (refused without it).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def merge(name: str, output: Path, overwrite: bool, dequantize: bool, as_json: bool) -> None:
    """Merge adapter NAME into its base and write a standalone model."""
    result = state().runtime().merge(name, output, overwrite=overwrite, dequantize=dequantize)
    if as_json:
        return echo_json(result.as_dict())
    click.echo(f"wrote merged model to {output}; merged vs unmerged outputs on {result.probe_texts} probe "
               f"texts differ by at most {result.max_abs_diff:.2e}")


@adapters.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(name: str, yes: bool) -> None:
    """Delete adapter NAME (its folder) and forget it."""
    runtime = state().runtime()
    folder = runtime.adapter(name).path
    if not yes:
        confirm(f"delete {folder}?")
    runtime.remove_adapter(name)
    click.echo(f"deleted {folder}")
