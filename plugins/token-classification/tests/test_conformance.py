"""The token-classification plugin against nlpapp's conformance suite (a new head on an encoder)."""

from nlpapp.testing.conformance import TaskConformance


class TestTokenClassificationConformance(TaskConformance):
    task = "token-classification"
    model = "fake-tagger"
    tiny_family = "encoder"
    examples = [{"text": "Shares of Acme Corp rose in Ohio .", "tags": "O O B-ORG I-ORG O O B-LOC O"},
                {"text": "Jane Roe founded the company .", "tags": "B-PER I-PER O O O O"},
                {"text": "Oil prices fell in the Gulf .", "tags": "O O O O O B-LOC O"},
                {"text": "The film was boring .", "tags": "O O O O O"}]
