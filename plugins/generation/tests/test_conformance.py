"""The generation plugin against nlpapp's conformance suite."""

from nlpapp.testing.conformance import TaskConformance


class TestGenerationConformance(TaskConformance):
    task = "generation"
    model = "fake-causal"
    tiny_family = "causal-lm"
    examples = [{"prompt": "Say hello.", "response": "hello"},
                {"prompt": "Name a colour and a fruit, please.", "response": "red apple"},
                {"prompt": "Count to three.", "response": "one two three"}]
