"""Helpers for testing nlpapp and its plugins without a model hub:

- ``fake``: a deterministic fake model, registered through a real plugin (``fake_plugin``);
- ``tiny``: tiny randomly initialised real models of every family, built on the spot;
- ``install_plugin``: makes a plugin discoverable through the real entry-point path.
"""

from __future__ import annotations

from pathlib import Path


def install_plugin(site: Path, name: str, module: str, version: str = "0.1.0",
                   sources: dict[str, str] | None = None) -> Path:
    """Write a minimal installed distribution into ``site`` (a folder to put on
    ``sys.path`` / ``PYTHONPATH``) whose ``nlpapp`` entry point ``name`` is ``module``.
    ``sources`` maps file names (e.g. ``"myplugin.py"``) to their text."""
    site.mkdir(parents=True, exist_ok=True)
    for filename, text in (sources or {}).items():
        (site / filename).write_text(text)
    dist = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text(f"[nlpapp]\n{name} = {module}\n")
    return dist
