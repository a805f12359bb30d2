"""Distillation (``nlpapp train --teacher``) and the QLoRA option, on tiny real models.

Logit distillation must move the student towards the teacher's distributions (more than
plain training does), sequence-level distillation must make it reproduce the teacher's
outputs, and what cannot work is refused in one line."""

import json
from pathlib import Path


from nlpapp.testing import tiny

TARGET_LANG = ("--target-lang", "fr", "--max-new-tokens", "6")


def _pairs(path: Path, numbers) -> str:
    path.write_text("".join(json.dumps({"prompt": f"say the number {i}", "response": f"number {i} is here"}) + "\n"
                            for i in numbers))
    return str(path)


def _held_out_kl(student: Path, teacher: Path, data: str, adapter: Path | None = None) -> float:
    """Mean KL(teacher || student) per target token of ``data``'s responses (as the
    generation task trains them: chat-framed prompt, response tokens and the end token),
    computed here with plain torch, not with nlpapp.training.distill."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nlpapp.training.features import causal_lm

    tokenizer = AutoTokenizer.from_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    reference = AutoModelForCausalLM.from_pretrained(teacher)
    total, count = 0.0, 0
    with torch.no_grad():
        for line in Path(data).read_text().splitlines():
            row = json.loads(line)
            feature = causal_lm(tokenizer, row["prompt"], row["response"], 64)
            ids = torch.tensor([feature["input_ids"]])
            mask = torch.tensor(feature["labels"][1:]) != -100
            p_student = model(input_ids=ids).logits[0, :-1][mask].log_softmax(-1)
            p_teacher = reference(input_ids=ids).logits[0, :-1][mask].log_softmax(-1)
            total += float((p_teacher.exp() * (p_teacher - p_student)).sum())
            count += int(mask.sum())
    return total / count


def test_logit_distillation_moves_the_student_towards_the_teacher(cli, tiny_model, tmp_path):
    # the teacher: a tiny model of another seed, with the student's tokenizer, trained whole on the task
    teacher = tmp_path / "teacher"
    code, _, err = cli("train", "generation", "-m", str(tiny.build("causal-lm", tmp_path / "teacher-base", seed=1)),
                       "--data", _pairs(tmp_path / "t.jsonl", range(32)), "--full", "--holdout", "0", "--epochs", "8",
                       "--batch-size", "4", "--lr", "3e-3", "--save-every", "0", "--output", str(teacher),
                       "--no-progress")
    assert code == 0, err
    student = tiny_model("causal-lm")
    train = _pairs(tmp_path / "train.jsonl", range(16))
    held = _pairs(tmp_path / "held.jsonl", range(40, 48))
    # LoRA on the output layer too: a tiny random model's logits are too small for its
    # attention alone to make them peaked, either way
    common = ("-m", str(student), "--data", train, "--holdout", "0", "--epochs", "10", "--batch-size", "4",
              "--lr", "1e-2", "--target-modules", "q_proj,v_proj,lm_head", "--save-every", "0", "--no-progress")
    code, out, err = cli("train", "generation", *common, "--teacher", str(teacher), "--output",
                         str(tmp_path / "distilled"), "--json")
    assert code == 0, err
    record = json.loads(out)["distillation"]
    assert (record["kind"], record["temperature"], record["alpha"]) == ("logit", 2.0, 0.5)
    assert record["teacher"]["spec"] == str(teacher)
    code, _, err = cli("train", "generation", *common, "--output", str(tmp_path / "plain"))
    assert code == 0, err

    before = _held_out_kl(student, teacher, held)
    distilled = _held_out_kl(student, teacher, held, tmp_path / "distilled")
    plain = _held_out_kl(student, teacher, held, tmp_path / "plain")
    # seen: 1.94 before, 0.37 distilled, 1.29 plain
    assert distilled < 0.5 * before and distilled < 0.5 * plain, (before, distilled, plain)


def _chrf(outputs: list[str], references: list[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_chrf(outputs, [references]).score


def test_sequence_level_distillation_trains_on_the_teachers_outputs(cli, runtime, tiny_model, tmp_path):
    sentences = list(dict.fromkeys(tiny.CORPUS))
    # the teacher: a tiny model with the student's vocabulary, trained whole to answer each
    # sentence with its words backwards (text it can spell); its outputs are what it learned
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"text": s, "translation": " ".join(reversed(s.lower().rstrip(".?").split()))})
                             + "\n" for s in sentences))
    teacher = tmp_path / "teacher"
    code, _, err = cli("train", "translation", "-m", str(tiny.build("causal-lm", tmp_path / "teacher-base", seed=2)),
                       "--data", str(pairs), *TARGET_LANG, "--full", "--holdout", "0", "--epochs", "15",
                       "--batch-size", "4", "--lr", "3e-3", "--save-every", "0", "--output", str(teacher),
                       "--no-progress")
    assert code == 0, err
    student = tiny_model("causal-lm")
    english = tmp_path / "english.txt"
    english.write_text("\n".join(sentences) + "\n")  # inputs only: the teacher writes the targets
    out = tmp_path / "fr-distilled"
    code, stdout, err = cli("train", "translation", "-m", str(student), "--teacher", str(teacher), "--distill-kind",
                            "sequence", "--data", str(english), *TARGET_LANG, "--holdout", "0", "--epochs", "15",
                            "--batch-size", "4", "--lr", "1e-2", "--target-modules", "q_proj,v_proj,lm_head",
                            "--save-every", "0", "--output", str(out), "--no-progress", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "teacher-targets.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == sentences  # one row per input, in order
    manifest = json.loads(stdout)
    assert manifest["distillation"]["kind"] == "sequence"
    assert manifest["distillation"]["teacher_examples"] == len(sentences)
    assert manifest["distillation"]["temperature"] is None  # no logits compared

    targets = [r["translation"] for r in rows]
    options = {"target_lang": "fr", "max_new_tokens": 6}
    # the targets are what the teacher says through the task's prediction path (nlpapp run)
    assert targets == [o.translation for o in runtime.run("translation", sentences, model=str(teacher),
                                                          options=options)]
    before = [o.translation for o in runtime.run("translation", sentences, model=str(student), options=options)]
    after = [o.translation for o in runtime.run("translation", sentences, adapter=str(out), options=options)]
    assert _chrf(after, targets) > _chrf(before, targets) + 20, (before, after, targets)


def test_a_teacher_with_another_vocabulary_teaches_by_its_outputs(cli, tiny_model, tmp_path):
    """auto: the byte-level BPE teacher shares no vocabulary with the WordPiece student."""
    data = tmp_path / "en.txt"
    data.write_text("The weather is nice today.\nOil prices fell.\nI loved this book.\nWho founded it?\n")
    out = tmp_path / "a"
    code, stdout, err = cli("train", "translation", "-m", str(tiny_model("causal-lm")), "--teacher",
                            str(tiny_model("qwen2")), "--data", str(data), *TARGET_LANG, "--holdout", "0",
                            "--max-steps", "1", "--batch-size", "2", "--output", str(out), "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(stdout)["distillation"]["kind"] == "sequence"
    assert len((out / "teacher-targets.jsonl").read_text().splitlines()) == 4


def _one_line_error(cli, *args) -> str:
    code, _, err = cli(*args)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_what_distillation_cannot_do_is_refused_in_one_line(cli, tiny_model, tmp_path):
    pairs = _pairs(tmp_path / "d.jsonl", range(8))
    student = str(tiny_model("causal-lm"))
    train = ("train", "generation", "-m", student, "--data", pairs, "--output", str(tmp_path / "out"))
    err = _one_line_error(cli, *train, "--teacher", str(tmp_path / "no-such-model"))
    assert err.startswith(f"nlpapp: error: --teacher {tmp_path / 'no-such-model'} cannot be used: ")
    bpe = str(tiny_model("qwen2"))
    err = _one_line_error(cli, *train, "--teacher", bpe, "--distill-kind", "logit")
    assert "--distill-kind logit: the teacher and the student do not share a vocabulary" in err
    assert "use --distill-kind sequence" in err
    err = _one_line_error(cli, *train, "--teacher", bpe, "--objective", "lm")
    assert "with --objective lm" in err and "do not share a vocabulary" in err
    err = _one_line_error(cli, *train, "--distill-kind", "sequence")
    assert "--distill-kind must be auto without --teacher" in err
    err = _one_line_error(cli, *train, "--teacher", student, "--distill-alpha", "1.5")
    assert "--distill-alpha must be in [0, 1], got 1.5" in err
    reviews = tmp_path / "r.jsonl"
    reviews.write_text('{"text": "good film", "label": "good"}\n{"text": "bad film", "label": "bad"}\n' * 4)
    err = _one_line_error(cli, "train", "sentiment", "-m", str(tiny_model("encoder")), "--data", str(reviews),
                          "--teacher", student, "--output", str(tmp_path / "out"))
    assert "distillation trains a language model" in err and "sequence-classification" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.checkpoints").exists()


def test_quantize_is_refused_on_cpu_before_any_model_loads(cli, tmp_path):
    pairs = _pairs(tmp_path / "d.jsonl", range(8))
    # a model that does not exist: the refusal comes first, so nothing was looked up or loaded
    err = _one_line_error(cli, "train", "generation", "-m", str(tmp_path / "absent"), "--data", pairs,
                          "--quantize", "4bit", "--device", "cpu", "--output", str(tmp_path / "out"))
    assert err.startswith("nlpapp: error: --quantize 4bit needs a CUDA GPU (bitsandbytes); this run is on cpu")
    assert "pip install bitsandbytes" in err
    err = _one_line_error(cli, "train", "generation", "--data", pairs, "--quantize", "4bit", "--full",
                          "--output", str(tmp_path / "out"))
    assert "--quantize must be unset with --full" in err


def test_an_adapter_of_a_quantized_base_merges_only_dequantized(cli, tiny_model, tmp_path):
    pairs = _pairs(tmp_path / "d.jsonl", range(8))
    adapter = tmp_path / "qlora"
    code, _, err = cli("train", "generation", "-m", str(tiny_model("causal-lm")), "--data", pairs, "--holdout", "0",
                       "--max-steps", "1", "--batch-size", "4", "--output", str(adapter), "--no-progress")
    assert code == 0, err
    manifest_path = adapter / "nlpapp-adapter.json"
    manifest = json.loads(manifest_path.read_text())
    # as a --quantize 4bit run on a GPU records it (its fingerprint is of the quantized weights)
    manifest["quantization"] = {"mode": "4bit", "library": "bitsandbytes", "quant_type": "nf4"}
    manifest["base_model"]["fingerprint"] = "quantized-weights"
    manifest_path.write_text(json.dumps(manifest))
    err = _one_line_error(cli, "adapters", "merge", str(adapter), "--output", str(tmp_path / "merged"))
    assert "trained on a 4bit-quantized base" in err and "pass --dequantize" in err
    assert not (tmp_path / "merged").exists()
    code, stdout, err = cli("adapters", "merge", str(adapter), "--output", str(tmp_path / "merged"), "--dequantize",
                            "--json")
    assert code == 0, err
    assert json.loads(stdout)["max_abs_diff"] < 1e-4
    assert (tmp_path / "merged" / "config.json").is_file()
