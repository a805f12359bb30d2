"""Every hook is documented with its exact signature and has a test; the CLI reference is current."""

import inspect
import re
from pathlib import Path

import pytest

from nlpapp import hookspecs

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_has_a_reference_section_with_its_signature(name):
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert f"## {name}({params})" in (DOCS / "hooks.md").read_text()


def test_reference_documents_no_hook_that_does_not_exist():
    documented = re.findall(r"^## (\w+)\(", (DOCS / "hooks.md").read_text(), flags=re.M)
    assert sorted(documented) == sorted(hookspecs.HOOK_NAMES)


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hookspec_docstring_says_when_it_fires_and_what_it_returns(name):
    doc = getattr(hookspecs, name).__doc__
    assert "Fires" in doc and "Return" in doc


def test_every_hook_has_a_test():
    """Each hook is implemented by some test plugin (and so exercised by a test)."""
    root = DOCS.parent
    sources = "\n".join(p.read_text() for folder in [root / "tests", *root.glob("plugins/*/tests")]
                        for p in folder.rglob("test_*.py"))
    sources += (root / "nlpapp" / "testing" / "fake_plugin.py").read_text()
    missing = [name for name in hookspecs.HOOK_NAMES if f"def {name}(" not in sources]
    assert not missing, f"hooks with no test plugin implementing them: {missing}"


def test_the_cli_reference_is_current():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "nlpapp.cli.reference", "--check", str(DOCS / "cli.md")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_api_reference_is_current_and_covers_all():
    import subprocess
    import sys

    import nlpapp

    out = subprocess.run([sys.executable, "-m", "nlpapp.apidoc", "--check", str(DOCS / "api.md")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    page = (DOCS / "api.md").read_text()
    for name in nlpapp.__all__:
        assert f"### `{name}" in page, name


def test_every_refusal_in_the_security_page_names_a_test_that_exists_and_every_fault_test_is_named():
    """docs/security.md maps each refusal to the test that makes the fault happen; a named
    test that does not exist, or a fault test the page does not name, fails here."""
    root = DOCS.parent
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", (DOCS / "security.md").read_text())
    assert len(named) >= 40
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^def {name}\(", (root / path).read_text(), flags=re.M)]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
    unnamed = [f"{p.name}::{name}" for p in sorted((root / "tests").glob("test_security_*.py"))
               for name in re.findall(r"^def (test_\w+)\(", p.read_text(), flags=re.M)
               if (f"tests/{p.name}", name) not in named]
    assert not unnamed, f"fault tests docs/security.md does not name: {unnamed}"
