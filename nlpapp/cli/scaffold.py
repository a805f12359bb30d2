"""``nlpapp new-plugin NAME``: scaffold a task plugin distribution that works as generated."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option("-o", "--output", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to create nlpapp-NAME/ in.")
def new_plugin(name: str, parent: Path) -> None:
    """Create nlpapp-NAME/: a task plugin with a metric, a dataset, tests and a README."""
    from .. import scaffold

    target = scaffold.write(name, parent)
    click.echo(f"created {target}/ (task {name!r}, metric {name}-exact, dataset {name}-sample)")
    click.echo(f"next: cd {target} && nlpapp plugins install -e . && pip install pytest && pytest")
