"""The summarization plugin against nlpapp's conformance suite."""

from nlpapp.testing.conformance import TaskConformance


class TestSummarizationConformance(TaskConformance):
    task = "summarization"
    model = "fake-causal"
    tiny_family = "causal-lm"
    examples = [{"text": "Oil prices fell on Monday after OPEC said output would rise next month.",
                 "summary": "Oil falls as OPEC output rises"},
                {"text": "Acme agreed to buy Widget Corp for 200 million dollars in cash, the companies said.",
                 "summary": "Acme to buy Widget Corp"},
                {"text": "Heavy rain closed schools across the region for a second day.",
                 "summary": "Rain closes schools again"}]
