"""A new classifier head imprinted from label descriptions or class means, and class weights
in the sequence-classification loss, on tiny real models."""

import pytest
import torch
import torch.nn.functional as F

from nlpapp.head import LOSS_WEIGHT, Head
from nlpapp.runtime.heads import SequenceClassificationHead
from nlpapp.task import TrainingContext
from nlpapp.training import head_init
from nlpapp.types import LoadOptions

# words of the tiny models' vocabulary (nlpapp.testing.tiny.CORPUS), so nothing is [UNK]
DESCRIBED = "good=i loved every minute of this wonderful book,bad=the film was a waste of two hours,oil=oil prices fell"
DESCRIPTIONS = {"good": "i loved every minute of this wonderful book", "bad": "the film was a waste of two hours",
                "oil": "oil prices fell"}


def load(runtime, tiny_model, family, labels, seed=0):
    torch.manual_seed(seed)  # as the trainer does: the new head's random weights come from it
    return runtime.models.load_uncached(str(tiny_model(family)), Head.SEQUENCE_CLASSIFICATION, labels,
                                        LoadOptions(device="cpu", dtype="float32"))


def features_for(runtime, model, rows, label_ids, options):
    task = runtime.task("text-classification")
    ctx = TrainingContext(model, Head.SEQUENCE_CLASSIFICATION, 64, options, label_ids)
    return [f for text, label in rows for f in task.training_features(task.Input(text), {"label": label}, ctx)]


def predicted(runtime, model, texts, options):
    task = runtime.task("text-classification")
    return [o.label for o in task.predict(model, [task.Input(t) for t in texts], options)]


@pytest.mark.parametrize("family", ["encoder", "causal-lm"])  # BERT's pooled `classifier`; a decoder's `score`
def test_descriptions_are_classified_as_their_own_labels_before_training(runtime, tiny_model, family):
    task = runtime.task("text-classification")
    options = task.parse_options({"labels": DESCRIBED})
    labels = ("bad", "good", "oil")
    label_ids = {label: i for i, label in enumerate(labels)}
    model = load(runtime, tiny_model, family, labels)
    texts = [DESCRIPTIONS[label] for label in labels]
    rows = [("the weather is nice today", "good"), ("who founded the company", "bad"), ("shares rose", "oil")]
    # the training examples are labelled at random: the descriptions, not the data, must set the head
    feats = features_for(runtime, model, rows, label_ids, options)
    rng = torch.get_rng_state()
    done = head_init.initialise_classifier(model, SequenceClassificationHead(), task, options, feats, label_ids, 64)
    assert torch.equal(torch.get_rng_state(), rng)  # LoRA's seeded weights, drawn next, are as without it
    assert model.trainable_module().training is False  # the mode it was loaded in, restored
    assert done is not None and done.startswith("prototypes from label descriptions")
    assert predicted(runtime, model, texts, options) == list(labels)
    [layer] = head_init.classifier_layers(model.trainable_module(), SequenceClassificationHead(), 3)
    assert torch.all(layer.bias == 0) if layer.bias is not None else True
    norms = layer.weight.detach().norm(dim=1)
    assert torch.allclose(norms, norms[0].expand(3))  # equal rows: the argmax is the nearest prototype by cosine


@pytest.mark.parametrize("family", ["encoder", "causal-lm"])
def test_the_untouched_head_gets_them_wrong(runtime, tiny_model, family):
    """So the test above fails where the init is skipped: the same seed's random head."""
    task = runtime.task("text-classification")
    options = task.parse_options({"labels": DESCRIBED})
    labels = ("bad", "good", "oil")
    model = load(runtime, tiny_model, family, labels)
    assert predicted(runtime, model, [DESCRIPTIONS[label] for label in labels], options) != list(labels)


def test_without_descriptions_of_every_label_the_class_means_are_used(runtime, tiny_model):
    task = runtime.task("text-classification")
    options = task.parse_options({})  # the sentiment preset describes positive/negative, not these labels
    assert task.label_descriptions(options).keys() == {"positive", "negative"}
    labels = ("crude", "deal")
    label_ids = {"crude": 0, "deal": 1}
    model = load(runtime, tiny_model, "encoder", labels)
    rows = [("oil prices fell as crude supply grew in the gulf", "crude"),
            ("shares of the company rose after record quarterly profit", "deal")]
    feats = features_for(runtime, model, rows, label_ids, options)
    done = head_init.initialise_classifier(model, SequenceClassificationHead(), task, options, feats, label_ids, 64,
                                           temperature=7.0)
    assert done == "class means of 2 training examples (weight imprinting, temperature 7)"
    assert predicted(runtime, model, [t for t, _ in rows], options) == ["crude", "deal"]
    # logits ~ temperature x cosine: each row's norm is 7 / the mean norm of the inputs read
    module = model.trainable_module()
    [layer] = head_init.classifier_layers(module, SequenceClassificationHead(), 2)
    inputs = head_init.layer_inputs(module, layer, SequenceClassificationHead(), feats, model.tokenizer.pad_token_id)
    assert layer.weight.detach().norm(dim=1).tolist() == pytest.approx([7.0 / float(inputs.norm(dim=1).mean())] * 2, rel=1e-5)
    expected = F.normalize(inputs, dim=1) * 7.0 / inputs.norm(dim=1).mean()
    assert torch.allclose(layer.weight.detach(), expected, atol=1e-5)


def test_a_head_without_a_linear_new_module_is_left_alone(runtime, tiny_model):
    class PooledHead(SequenceClassificationHead):
        new_modules = ("pooler",)  # BertPooler: a dense layer and a tanh, not a Linear

    task = runtime.task("text-classification")
    options = task.parse_options({"labels": DESCRIBED})
    label_ids = {"bad": 0, "good": 1, "oil": 2}
    model = load(runtime, tiny_model, "encoder", tuple(label_ids))
    before = {k: v.clone() for k, v in model.trainable_module().state_dict().items()}
    feats = features_for(runtime, model, [("awful film", "bad"), ("wonderful book", "good")], label_ids, options)
    assert head_init.initialise_classifier(model, PooledHead(), task, options, feats, label_ids, 64) is None
    # a Linear with the wrong number of outputs is not the classifier either
    assert head_init.initialise_classifier(model, SequenceClassificationHead(), task, options, feats,
                                           {"bad": 0, "good": 1}, 64) is None
    after = model.trainable_module().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_balanced_weights_follow_the_formula_and_average_one(runtime, tiny_model):
    feats = [{"input_ids": [2, 9, 3], "labels": label} for label in (0, 0, 0, 1)]
    weights = head_init.balance_classes(feats, {"bad": 0, "good": 1})
    # n / (k * count): 4 / (2 * 3) and 4 / (2 * 1), scikit-learn's class_weight="balanced"
    assert weights == pytest.approx({"bad": 4 / 6, "good": 2.0})
    assert [f[LOSS_WEIGHT] for f in feats] == pytest.approx([4 / 6] * 3 + [2.0])
    assert sum(f[LOSS_WEIGHT] for f in feats) == pytest.approx(len(feats))
    tagged = [{"input_ids": [2, 9, 3], "labels": [-100, 1, -100]}]  # a label per token: not weighted
    assert head_init.balance_classes(tagged, {"O": 0, "B-PER": 1}) is None and LOSS_WEIGHT not in tagged[0]
    with pytest.raises(ValueError, match="not a label id"):
        head_init.balance_classes([{"input_ids": [2], "labels": 5}], {"bad": 0, "good": 1})


def test_weights_change_the_loss_as_the_formula_says(runtime, tiny_model):
    task = runtime.task("text-classification")
    options = task.parse_options({})
    label_ids = {"bad": 0, "good": 1}
    model = load(runtime, tiny_model, "encoder", tuple(label_ids))
    rows = [("awful boring film", "bad"), ("the film was a waste", "bad"), ("a waste of two hours", "bad"),
            ("i loved this wonderful book", "good")]
    feats = features_for(runtime, model, rows, label_ids, options)
    head, module = SequenceClassificationHead(), model.trainable_module()
    pad = model.tokenizer.pad_token_id
    with torch.no_grad():
        plain = float(head.loss_sum(module, head.collate(feats, pad)))
        logits = module(**{k: v for k, v in head.collate(feats, pad).items() if k != "labels"}).logits
        labels = torch.tensor([f["labels"] for f in feats])
        per_example = F.cross_entropy(logits, labels, reduction="none")
        head_init.balance_classes(feats, label_ids)
        weighted = float(head.loss_sum(module, head.collate(feats, pad)))
        torch_mean = float(F.cross_entropy(logits, labels, weight=torch.tensor([4 / 6, 2.0])))
    assert plain == pytest.approx(float(per_example.sum()), rel=1e-5)
    w = torch.tensor([4 / 6, 4 / 6, 4 / 6, 2.0])
    assert weighted == pytest.approx(float((w * per_example).sum()), rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)
    # divided by the sum of the weights it is torch's weighted mean; the weights sum to n here
    assert weighted / float(w.sum()) == pytest.approx(torch_mean, rel=1e-5)
    assert sum(head.target_count(f) for f in feats) == len(feats)


def test_sentiment_label_descriptions_follow_the_labels_option(runtime):
    task = runtime.task("sentiment")
    assert task.label_descriptions(task.parse_options({"labels": "acq=a takeover,crude=oil prices"})) == {
        "acq": ["a takeover"], "crude": ["oil prices"]}
    assert len(task.label_descriptions(task.parse_options({}))["positive"]) == 4  # the preset's sentences
