"""The translation plugin against nlpapp's conformance suite."""

from nlpapp.testing.conformance import TaskConformance


class TestTranslationConformance(TaskConformance):
    task = "translation"
    model = "fake-seq2seq"
    tiny_family = "seq2seq-lm"
    options = {"source_lang": "en", "target_lang": "fr"}
    examples = [{"text": "The weather is nice today.", "translation": "Il fait beau aujourd'hui."},
                {"text": "I like apples.", "translation": "J'aime les pommes."},
                {"text": "Where is the station?", "translation": "Où est la gare ?"}]
