"""A plugin that registers the fake models (``fake-causal``, ``fake-seq2seq``,
``fake-classifier``, ``fake-qa``, ``fake-encoder``) and loads them through the real
``load_model`` hook. Tests install it with ``nlpapp.testing.install_plugin``."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..head import Head
from ..types import ModelPreset
from .fake import FakeModel

PREFIX = "fake://"
FAKES = {"fake-causal": Head.CAUSAL_LM, "fake-seq2seq": Head.SEQ2SEQ_LM,
         "fake-classifier": Head.SEQUENCE_CLASSIFICATION, "fake-qa": Head.EXTRACTIVE_QA,
         "fake-encoder": Head.ENCODER}


@hookimpl
def register_models(register):
    for name, head in FAKES.items():
        register(ModelPreset(name=name, family=head, description=f"deterministic fake model with a {head} head",
                             source="nlpapp.testing", license="Apache-2.0",
                             locate=lambda name=name: PREFIX + name))


@hookimpl
def load_model(path, head):
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX):]
    return FakeModel(name, head or FAKES[name])
