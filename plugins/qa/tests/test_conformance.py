"""The QA plugin against nlpapp's conformance suite (extractive family for training)."""

from nlpapp.testing.conformance import TaskConformance


class TestQAConformance(TaskConformance):
    task = "question-answering"
    model = "fake-qa"
    tiny_family = "extractive-qa"
    examples = [{"question": "Who founded Acme?", "context": "Acme was founded by Jane Roe in 1990.", "answer": "Jane Roe"},
                {"question": "Where is the mill?", "context": "The old mill stands in Leipzig.", "answer": "Leipzig"},
                {"question": "When did it open?", "context": "The station opened in 1872 after long delays.",
                 "answer": "1872"}]
