"""A plugin that registers the fake models (``fake-causal``, ``fake-seq2seq``,
``fake-classifier``, ``fake-qa``, ``fake-encoder``) and loads them through the real
``load_model`` hook. Tests install it with ``nlpapp.testing.install_plugin``."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..types import ModelFamily, ModelPreset
from .fake import FakeModel

PREFIX = "fake://"
FAKES = {"fake-causal": ModelFamily.CAUSAL_LM, "fake-seq2seq": ModelFamily.SEQ2SEQ_LM,
         "fake-classifier": ModelFamily.SEQUENCE_CLASSIFICATION, "fake-qa": ModelFamily.EXTRACTIVE_QA,
         "fake-encoder": ModelFamily.ENCODER}


@hookimpl
def register_models(register):
    for name, family in FAKES.items():
        register(ModelPreset(name=name, family=family, description=f"deterministic fake {family} model",
                             source="nlpapp.testing", license="Apache-2.0",
                             locate=lambda name=name: PREFIX + name))


@hookimpl
def load_model(path, family, options):
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX):]
    return FakeModel(name, ModelFamily(family) if family else FAKES[name])
