"""``nlpapp adapters``: list, show, merge and remove trained adapters."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def adapters() -> None:
    """Manage trained adapters (nlpapp train writes them and remembers them by folder name)."""


@adapters.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_adapters(as_json: bool) -> None:
    """List remembered adapters: name, task, base model, steps, final loss."""
    from ..training import adapters as store

    rows = []
    for name, folder in store.known().items():
        manifest = store.read_manifest(folder)
        rows.append({"name": name, "path": str(folder), "kind": manifest["kind"], "task": manifest["task"],
                     "base_model": manifest["base_model"]["spec"], "metrics": manifest["metrics"]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no adapters yet; nlpapp train TASK --output DIR makes one")
    for row in rows:
        loss = row["metrics"].get("final_loss")
        click.echo(f"{row['name']}  {row['kind']}  task {row['task']}  base {row['base_model']}  "
                   f"steps {row['metrics'].get('steps')}  loss {loss:.4g}  {row['path']}")


@adapters.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def show(name: str, as_json: bool) -> None:
    """Describe an adapter (NAME or folder): task, head, base model, labels, training and metrics."""
    from ..training import adapters as store

    folder = store.resolve(name)
    manifest = store.read_manifest(folder)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    base = manifest["base_model"]
    click.echo(folder)
    click.echo(f"  task {manifest['task']}, {manifest['kind']} adapter on a {store.head_of(manifest)} head")
    click.echo(f"  base model {base['spec']} ({base['model_type']}, fingerprint {base['fingerprint']})")
    if manifest.get("labels"):
        click.echo(f"  labels {', '.join(manifest['labels'])}")
    config = manifest["config"]
    click.echo(f"  trained {config['epochs']} epochs at lr {config['lr']} on {', '.join(manifest['data']['files'])}")
    click.echo("  metrics " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in manifest["metrics"].items()))


@adapters.command()
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Folder for the merged model.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def merge(name: str, output: Path, overwrite: bool, as_json: bool) -> None:
    """Merge adapter NAME into its base and write a standalone model."""
    from .. import api
    from ..training.merge import merge as merge_adapter
    from .main import STATE

    report = merge_adapter(api.Runtime(STATE.plugins).models, name, output, overwrite)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"wrote merged model to {output}; merged vs unmerged outputs on {report['probe_texts']} probe "
               f"texts differ by at most {report['max_abs_diff']:.2e}")


@adapters.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def rm(name: str, yes: bool) -> None:
    """Delete adapter NAME (its folder) and forget it."""
    from ..training import adapters as store

    folder = store.resolve(name)
    if not yes:
        click.confirm(f"delete {folder}?", abort=True)
    store.remove(name)
    click.echo(f"deleted {folder}")
