"""Fixtures for testing nlpapp and nlpapp plugins (a pytest plugin, entry point ``pytest11``).

- ``nlpapp_home``: an empty ``NLPAPP_HOME`` for the test;
- ``fake_plugin_site``: puts the fake-model plugin on the real entry-point path;
- ``runtime``: an ``api.Runtime`` with installed plugins plus the fakes;
- ``cli``: runs ``nlpapp`` in-process and returns (exit code, stdout, stderr);
- ``tiny_model``: builds (once per session) a tiny real model of a family;
- ``isolated_runtime``: a runtime with only the plugins a test names (nothing installed);
- ``register_plugin``: installs a plugin from source for one test, on the real entry-point path.

The conformance suite for task plugins is ``nlpapp.testing.conformance.TaskConformance``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Callable

import pytest

from . import install_plugin


@pytest.fixture
def nlpapp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "nlpapp-home"
    monkeypatch.setenv("NLPAPP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def _fake_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("fake-site")
    install_plugin(site, "nlpapp-fake-models", "nlpapp.testing.fake_plugin")
    return site


@pytest.fixture
def fake_plugin_site(_fake_site: Path, monkeypatch: pytest.MonkeyPatch, nlpapp_home: Path) -> Path:
    """The fake plugin, discoverable as an installed distribution (in-process and for
    subprocesses through PYTHONPATH)."""
    import os

    monkeypatch.syspath_prepend(str(_fake_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(_fake_site), os.environ.get("PYTHONPATH")])))
    for var in ("NLPAPP_LOAD_PLUGINS", "NLPAPP_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    return _fake_site


@pytest.fixture
def runtime(fake_plugin_site: Path):
    from nlpapp.api import Runtime

    return Runtime.create()


@pytest.fixture
def cli(fake_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """``cli(*args, stdin=None)`` -> (exit code, stdout, stderr), in-process."""
    from nlpapp.cli import main as cli_main

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin if stdin is not None else ""))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main.main(list(args))
        return code, out.getvalue(), err.getvalue()

    return invoke


@pytest.fixture
def isolated_runtime(nlpapp_home: Path) -> Callable[..., object]:
    """``isolated_runtime(*plugins)`` -> an ``api.Runtime`` with the core, the fake models
    and the given plugin modules or objects only: no installed plugin leaks in."""
    from nlpapp.api import Runtime
    from nlpapp.plugins import load_plugins

    from . import fake_plugin

    def make(*plugins: object) -> object:
        extra = [("fake-models", fake_plugin)] + [(getattr(p, "__name__", repr(p)), p) for p in plugins]
        return Runtime(load_plugins(entry_points=False, extra=extra))

    return make


@pytest.fixture
def register_plugin(fake_plugin_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``register_plugin(name, source, requires=None)``: install a one-module plugin written
    in ``source`` as the distribution ``nlpapp-NAME``, for this test only; ``runtime`` and
    ``cli`` (and subprocesses) then load it like any installed plugin. Returns the folder
    it is installed in."""
    import os

    site = tmp_path / "plugin-site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    def register(name: str, source: str, requires: list[str] | None = None) -> Path:
        import textwrap

        module = name.replace("-", "_") + "_plugin"
        install_plugin(site, name, module, sources={f"{module}.py": textwrap.dedent(source)}, requires=requires,
                       distribution=f"nlpapp-{name}")
        return site

    return register


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_model(family)`` -> folder of a tiny real model (built once per session)."""
    from . import tiny

    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = tiny.build(family, tmp_path_factory.mktemp(family))
        return built[family]

    return get


def pytest_configure(config: pytest.Config) -> None:
    # peft calls a transformers method that transformers 5 deprecated; not a plugin's to fix
    config.addinivalue_line("filterwarnings", "ignore:.*is_gradient_checkpointing.*:FutureWarning")
    # torch.compile's code generation still uses a torch API torch itself deprecated
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
