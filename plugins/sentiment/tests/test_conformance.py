"""The sentiment plugin against nlpapp's conformance suite (a classifier head on an encoder)."""

from nlpapp.testing.conformance import TaskConformance


class TestSentimentConformance(TaskConformance):
    task = "sentiment"
    model = "fake-classifier"
    tiny_family = "encoder"
    examples = [{"text": "A wonderful film, I loved it.", "label": "positive"},
                {"text": "Awful and boring.", "label": "negative"},
                {"text": "The best meal I have had.", "label": "positive"},
                {"text": "A waste of money.", "label": "negative"}]
