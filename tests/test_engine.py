"""The batching engine: length-sorted batches, input order restored, streaming windows."""

from nlpapp.runtime import engine
from nlpapp.runtime.engine import Predictor


def test_batches_are_length_sorted_and_order_is_restored(runtime):
    task = runtime.task("generation")
    model = runtime.models.load("fake-causal")
    texts = ["a " * n + f"n{n}" for n in (7, 1, 5, 3, 8, 2, 6, 4)]
    inputs = [task.make_input({"prompt": t}) for t in texts]
    lengths_seen = []
    original = task.predict

    def spy(model, batch, options, stream=None):
        lengths_seen.append([len(i.prompt) for i in batch])
        return original(model, batch, options, stream)

    task.predict = spy
    results = list(Predictor(task, model, {}, batch_size=3).predict(inputs))
    assert [i.prompt for i, _ in results] == texts
    assert [o.text.split()[0] for _, o in results] == [f"n{n}" for n in (7, 1, 5, 3, 8, 2, 6, 4)]
    flat = [n for batch in lengths_seen for n in batch]
    assert flat == sorted(flat)  # each batch holds neighbours in length
    assert [len(b) for b in lengths_seen] == [3, 3, 2]


def test_windows_stream_before_the_input_ends(runtime, monkeypatch):
    monkeypatch.setattr(engine, "WINDOW_BATCHES", 1)
    task = runtime.task("generation")
    model = runtime.models.load("fake-causal")
    consumed = []

    def inputs():
        for n in range(10):
            consumed.append(n)
            yield task.make_input({"prompt": f"p{n}"})

    results = Predictor(task, model, {}, batch_size=2).predict(inputs())
    first = next(results)
    assert first[0].prompt == "p0"
    assert len(consumed) <= 3  # one window of 2, plus the look-ahead that ended it
    assert len(list(results)) == 9


def test_progress_callback_counts_every_item(runtime):
    task = runtime.task("sentiment")
    model = runtime.models.load("fake-classifier")
    counted = []
    inputs = [task.make_input({"text": f"text {n}"}) for n in range(5)]
    list(Predictor(task, model, {}, batch_size=2).predict(inputs, on_batch=counted.append))
    assert sum(counted) == 5


def test_one_pass_models_get_smaller_batches_for_a_long_tail_of_lengths(runtime):
    """Classifier inputs of 50 to 2,000 characters: batches stop where padding would exceed
    5% (beyond 100 characters); generation keeps full batches, where each costs a pass per token."""
    lengths = [50 + 39 * i for i in range(50)] * 2  # 100 inputs, 50 to 1961 characters
    for task_name, model_name, field in (("sentiment", "fake-classifier", "text"), ("generation", "fake-causal",
                                                                                     "prompt")):
        task = runtime.task(task_name)
        model = runtime.models.load(model_name)
        inputs = [task.make_input({field: "x" * n}) for n in lengths]
        model.calls.clear()
        one_pass = runtime.one_pass(model)
        assert one_pass == (task_name == "sentiment")  # from the registered head
        options = {"max_new_tokens": 1} if task_name == "generation" else {}
        outputs = list(Predictor(task, model, options, batch_size=32, one_pass=one_pass).predict(inputs))
        assert [len(getattr(i, field)) for i, _ in outputs] == lengths  # order restored
        if task_name == "generation":
            assert model.calls == [32, 32, 32, 4]
        else:
            assert sum(model.calls) == 100 and len(model.calls) > 4
            batches = Predictor(task, model, {}, batch_size=32, one_pass=True)._batches(inputs)
            for batch in batches:
                shortest, longest = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
                assert longest <= max(engine.MAX_PAD_RATIO * shortest, shortest + engine.PAD_ALLOWANCE_CHARS)
