"""The sentiment plugin (task text-classification) against nlpapp's conformance suite (a
classifier head on an encoder), under the task's name and under its old name."""

from nlpapp.testing.conformance import TaskConformance


class TestTextClassificationConformance(TaskConformance):
    task = "text-classification"
    model = "fake-classifier"
    tiny_family = "encoder"
    examples = [{"text": "A wonderful film, I loved it.", "label": "positive"},
                {"text": "Awful and boring.", "label": "negative"},
                {"text": "The best meal I have had.", "label": "positive"},
                {"text": "A waste of money.", "label": "negative"}]


class TestSentimentAliasConformance(TestTextClassificationConformance):
    task = "sentiment"  # the old name: plugins' own conformance suites may still use it
