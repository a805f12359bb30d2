"""The generation plugin (task text-generation) against nlpapp's conformance suite."""

from nlpapp.testing.conformance import TaskConformance


class TestGenerationConformance(TaskConformance):
    task = "text-generation"
    model = "fake-causal"
    tiny_family = "causal-lm"
    examples = [{"prompt": "Say hello.", "response": "hello"},
                {"prompt": "Name a colour and a fruit, please.", "response": "red apple"},
                {"prompt": "Count to three.", "response": "one two three"}]
