"""``nlpapp new-plugin NAME``: scaffold a task plugin distribution that works as generated."""

from __future__ import annotations

from pathlib import Path

import click

from .. import scaffold  # templates as strings: cheap to import


@click.command("new-plugin")
@click.argument("name")
@click.option("-o", "--output", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to create nlpapp-NAME/ in.")
@click.option("--kind", type=click.Choice(list(scaffold.KINDS)), default=scaffold.DEFAULT_KIND, show_default=True,
              help="The task's shape: a text from a text (a language model), a label per text, a BIO tag "
                   "per word, or an answer span in a context; each on its stage base class.")
def new_plugin(name: str, parent: Path, kind: str) -> None:
    """Create nlpapp-NAME/: a task plugin with a metric, a dataset, tests and a README."""
    target = scaffold.write(name, parent, kind)
    click.echo(f"created {target}/ ({kind} task {name!r}; {scaffold.registers(name, kind)}; "
               f"dataset {name}-sample)")
    click.echo(f"next: cd {target} && nlpapp plugins install -e . && pip install pytest && pytest")
