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
