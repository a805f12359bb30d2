"""Helpers for testing nlpapp and its plugins without a model hub:

- ``fake``: a deterministic fake model, registered through a real plugin (``fake_plugin``);
- ``tiny``: tiny randomly initialised real models of every family, built on the spot;
- ``install_plugin``: makes a plugin discoverable through the real entry-point path.
"""

from __future__ import annotations

from pathlib import Path


def install_plugin(site: Path, name: str, module: str, version: str = "0.1.0",
                   sources: dict[str, str] | None = None, requires: list[str] | None = None,
                   distribution: str | None = None) -> Path:
    """Write a minimal installed distribution into ``site`` (a folder to put on
    ``sys.path`` / ``PYTHONPATH``) whose ``nlpapp`` entry point ``name`` is ``module``.
    ``sources`` maps file paths (e.g. ``"myplugin.py"``, ``"pkg/__init__.py"``) to their
    text; ``requires`` are its ``Requires-Dist`` lines (e.g. ``["nlpapp>=0.1,<0.2"]``);
    ``distribution`` is its distribution name (default: ``name``)."""
    import importlib

    distribution = distribution or name
    site.mkdir(parents=True, exist_ok=True)
    for filename, text in (sources or {}).items():
        (site / filename).parent.mkdir(parents=True, exist_ok=True)
        (site / filename).write_text(text)
    dist = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires or []))
    (dist / "entry_points.txt").write_text(f"[nlpapp]\n{name} = {module}\n")
    importlib.invalidate_caches()  # a folder already on sys.path has new files
    return dist
