"""A deterministic fake tagger, registered through the real plugin path (an installed
distribution with an ``nlpapp`` entry point), for the inference checks."""

import pytest

from nlpapp.testing import install_plugin

FAKE_TAGGER = '''
from nlpapp import Head, Model, ModelPreset, hookimpl


class FakeTagger(Model):
    """Capitalised words that do not start the text are entities of type ENT; a run of
    them is one entity. Probability 0.9 for the tag chosen, 0.1 spread over the others."""

    head = Head.TOKEN_CLASSIFICATION
    labels = ("B-ENT", "I-ENT", "O")

    def __init__(self):
        self.name = "fake-tagger"
        self.calls = []

    def tag_words(self, words):
        self.calls.append(len(words))
        tagged = []
        for row in words:
            tags, previous = [], "O"
            for i, word in enumerate(row):
                tag = "O" if i == 0 or not word[:1].isupper() else ("I-ENT" if previous != "O" else "B-ENT")
                tags.append(tag)
                previous = tag
            tagged.append([{label: 0.9 if label == tag else 0.05 for label in self.labels} for tag in tags])
        return tagged


@hookimpl
def register_models(register):
    register(ModelPreset("fake-tagger", Head.TOKEN_CLASSIFICATION, "deterministic fake tagger", "tests",
                         "Apache-2.0", locate=lambda: "fake-tagger://"))


@hookimpl
def load_model(path):
    return FakeTagger() if path == "fake-tagger://" else None
'''


@pytest.fixture(scope="session")
def _tagger_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("fake-tagger-site")
    install_plugin(site, "fake-tagger", "fake_tagger", sources={"fake_tagger.py": FAKE_TAGGER})
    return site


@pytest.fixture(autouse=True)
def fake_tagger(_tagger_site, monkeypatch):
    import os

    monkeypatch.syspath_prepend(str(_tagger_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(_tagger_site), os.environ.get("PYTHONPATH")])))
    return _tagger_site
