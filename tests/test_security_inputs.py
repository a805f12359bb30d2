"""Issue 13: bad input is one clear line, never a traceback, a hang or a silent overwrite.

Text that is not UTF-8 (on stdin, as an argument, in a file) names its source and the byte;
a huge input is cut by characters before it is tokenized, with one warning that gives its
length, and an input over the size cap is refused; ``--output`` never replaces the input;
nan and infinity are not settings; malformed files of other kinds fail on one line too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nlpapp.api import run
from nlpapp.errors import InputError, NlpappError
from nlpapp.stages import CHARS_PER_TOKEN, MAX_CONTEXT_TOKENS

SENTENCE = "the weather is nice today "  # every word is in the tiny models' vocabulary
HUGE = SENTENCE * 120_000  # 3,120,000 characters


def _error_line(code, err):
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlpapp: error: "), err
    return lines[0].removeprefix("nlpapp: error: ")


# --- 1. text that is not UTF-8 ---------------------------------------------------------------------

def test_stdin_that_is_not_utf8_names_the_byte_offset_and_line(fake_plugin_site, nlpapp_home):
    # a UTF-8 locale, as most users have: Python's stdin there is strict, so this was a traceback
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "0"}
    done = subprocess.run([sys.executable, "-m", "nlpapp", "run", "sentiment", "-m", "fake-classifier"],
                          input=b"good film\nbad \xff film\n", capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode().strip() == (
        "nlpapp: error: stdin: not UTF-8 text: byte 0xff at byte offset 14, line 2; convert it to UTF-8 "
        "(iconv -t UTF-8)")


def test_an_argument_that_is_not_utf8_names_the_argument_and_offset(cli):
    # Python hands an undecodable argv byte over as a surrogate escape (0xff -> U+DCFF)
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "fine", "bad \udcff arg")
    assert _error_line(code, err) == ("argument 2: field 'text' is not UTF-8 text: byte 0xff at byte offset 4; "
                                      "convert it to UTF-8")


def test_a_file_that_is_not_utf8_names_the_byte_offset_and_line(cli, tmp_path):
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"text": "ok"}\n' + '{"text": "café"}\n'.encode("latin-1"))
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert _error_line(code, err) == (f"{data}: not UTF-8 text: byte 0xe9 at byte offset 28, line 2; "
                                      "convert it to UTF-8 (iconv -t UTF-8)")


def test_a_binary_file_fails_on_one_line(cli, tmp_path):
    data = tmp_path / "model.jsonl"  # a gzip file under a data file's name
    data.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert _error_line(code, err).startswith(f"{data}: not UTF-8 text: byte 0x8b at byte offset 1, line 1")


def test_a_lone_surrogate_escape_in_json_fails_on_one_line(cli, tmp_path):
    data = tmp_path / "escaped.jsonl"
    data.write_text('{"text": "half a pair \\ud83d here"}\n')
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert _error_line(code, err) == (f"{data}:1: field 'text' is not text: a lone surrogate \\ud83d at character 12 "
                                      "(half of a character written as a JSON \\u escape); write the whole character")


def test_a_reference_that_is_not_utf8_fails_on_one_line(cli, tmp_path):
    data = tmp_path / "dev.jsonl"
    data.write_text('{"text": "a good film", "label": "posi\\udcfftive"}\n')
    code, _, err = cli("eval", "sentiment", "-m", "fake-classifier", "--data", str(data), "--bootstrap", "0")
    assert _error_line(code, err).startswith(f"{data}:1: field 'label' is not UTF-8 text: byte 0xff at byte offset 4")


def test_a_task_option_that_is_not_utf8_names_the_option(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-encoder", "--labels", "good,b\udcffd", "a text")
    assert _error_line(code, err) == "--labels is not UTF-8 text: byte 0xff at byte offset 6; convert it to UTF-8"


# --- 2. huge inputs: cut by characters before tokenizing, one warning, a size cap --------------------

@pytest.fixture
def tokenized(monkeypatch):
    """The characters of the longest text each tokenizer call was given (a spy: the real
    tokenizer still runs)."""
    from transformers import PreTrainedTokenizerBase

    seen: list[int] = []
    original = PreTrainedTokenizerBase.__call__

    def size(value):
        if isinstance(value, str):
            return len(value)
        return max((size(v) for v in value), default=0) if isinstance(value, (list, tuple)) else 0

    def spy(self, text=None, text_pair=None, *args, **kwargs):
        seen.append(max(size(text), size(text_pair)))
        return original(self, text, text_pair, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", spy)
    return seen


def _warnings(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("nlpapp: warning: ")]


def _one(runtime, task, record, model, **options):
    [(_, output)] = run(runtime, task, [("input 1", record)], model=model, options=options)
    return output


@pytest.mark.parametrize("task,family,options", [
    ("summarization", "seq2seq-lm", {}),
    ("summarization", "causal-lm", {"max_new_tokens": 8}),
    ("translation", "causal-lm", {"target_lang": "fr", "max_new_tokens": 8}),  # was not cut at all
])
def test_a_huge_text_to_text_input_is_cut_before_tokenizing_with_one_warning(runtime, tiny_model, tokenized,
                                                                             capsys, task, family, options):
    model = str(tiny_model(family))
    out = _one(runtime, task, {"text": HUGE}, model, **options)
    window = runtime.models.load(model).max_input_tokens
    assert tokenized and max(tokenized) <= window * CHARS_PER_TOKEN
    [warning] = _warnings(capsys)
    assert f"text of {len(HUGE):,} characters truncated to" in warning and f"window of {window}" in warning
    if task == "summarization":  # estimated from the part read: five tokens a sentence
        assert out.truncated_tokens > 500_000


def test_a_huge_generative_qa_context_is_cut_before_tokenizing(runtime, capsys):
    # the tiny models' character-level vocabulary makes the QA instructions outgrow their window:
    # the fake (a token a word) shows the same stage
    _one(runtime, "qa", {"question": "is it nice?", "context": HUGE}, "fake-causal", max_answer_tokens=4)
    [warning] = _warnings(capsys)
    assert f"context of {len(HUGE):,} characters truncated to" in warning


def test_a_huge_extractive_qa_context_is_searched_in_its_first_tokens(runtime, tiny_model, tokenized, capsys):
    context = HUGE + "acme was founded in 1990"
    out = _one(runtime, "qa", {"question": "who founded acme?", "context": context}, str(tiny_model("extractive-qa")))
    assert tokenized and max(tokenized) <= MAX_CONTEXT_TOKENS * CHARS_PER_TOKEN
    [warning] = _warnings(capsys)
    assert f"context of {len(context):,} characters cut to its first {MAX_CONTEXT_TOKENS} tokens" in warning
    assert context[out.start:out.end] == out.answer and out.end <= MAX_CONTEXT_TOKENS * CHARS_PER_TOKEN


def test_a_huge_text_to_classify_is_cut_before_tokenizing_with_one_warning(runtime, tiny_model, tokenized, capsys):
    model = str(tiny_model("sequence-classification"))
    out = _one(runtime, "sentiment", {"text": HUGE}, model)
    assert out.label in ("positive", "negative")
    assert tokenized and max(tokenized) <= 128 * CHARS_PER_TOKEN
    [warning] = _warnings(capsys)
    assert f"text of {len(HUGE):,} characters is more than" in warning


def test_a_huge_text_to_tag_keeps_a_tag_per_word_with_one_warning(runtime, tiny_model, tokenized, capsys):
    out = _one(runtime, "ner", {"text": HUGE}, str(tiny_model("token-classification")))
    assert len(out.tags) == len(HUGE.split())  # the words not read are outside, as past the window
    assert set(out.tags[-1000:]) == {"O"}
    assert tokenized and max(tokenized) <= 128 * CHARS_PER_TOKEN
    [warning] = _warnings(capsys)
    assert f"text of {len(HUGE):,} characters is more than" in warning


def test_a_huge_generation_prompt_is_refused_before_tokenizing(runtime, tiny_model, tokenized):
    with pytest.raises(InputError, match=rf"input of {len(HUGE):,} characters is far longer than .* window of 256"):
        _one(runtime, "generation", {"prompt": HUGE}, str(tiny_model("causal-lm")), max_new_tokens=8)
    assert not tokenized or max(tokenized) <= 256 * CHARS_PER_TOKEN


def test_an_input_over_the_size_cap_is_refused_before_a_model_loads(runtime):
    from nlpapp.task import MAX_INPUT_CHARS

    text = "a" * (MAX_INPUT_CHARS + 1)
    with pytest.raises(InputError, match=rf"^input 1: field 'text' has {MAX_INPUT_CHARS + 1:,} characters; "
                                         rf"an input may hold at most {MAX_INPUT_CHARS:,}"):
        runtime.run("summarization", text, model="no-such-model")


def test_a_line_over_the_read_limit_is_refused_without_reading_it_whole(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("nlpapp.runtime.records.MAX_LINE_BYTES", 1000)
    data = tmp_path / "one-line.txt"
    data.write_text("word " * 1000)  # no line break at all
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert _error_line(code, err).startswith(f"{data}:1: line longer than 1,000 bytes")


# --- 3. --output never replaces the input --------------------------------------------------------

@pytest.mark.parametrize("name", ["same", "dot-slash", "symlink", "hard link"])
def test_run_refuses_to_write_its_input(cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "in.jsonl"
    content = '{"text": "a good film"}\n'
    source.write_text(content)
    output = {"same": "in.jsonl", "dot-slash": "./in.jsonl", "symlink": "link.jsonl", "hard link": "hard.jsonl"}[name]
    if name == "symlink":
        (tmp_path / output).symlink_to(source)
    elif name == "hard link":
        os.link(source, tmp_path / output)
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", "in.jsonl", "--output", output)
    assert _error_line(code, err) == (f"cannot write {Path(output)}: it is the input in.jsonl; "
                                      "write the predictions to another file")
    assert source.read_text() == content


def test_eval_refuses_to_write_its_data(cli, tmp_path):
    data = tmp_path / "dev.jsonl"
    content = '{"text": "a good film", "label": "positive"}\n'
    data.write_text(content)
    code, _, err = cli("eval", "sentiment", "-m", "fake-classifier", "--data", str(data), "--output",
                       str(tmp_path / "." / "dev.jsonl"), "--bootstrap", "0")
    assert _error_line(code, err).startswith(f"cannot write {tmp_path / '.' / 'dev.jsonl'}: it is the input {data}")
    assert data.read_text() == content


def test_run_refuses_to_write_over_its_task_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    task_file = tmp_path / "tasks" / "reviews.yaml"
    content = "kind: text-classification\ndescription: Reviews.\nmodel: fake-classifier\n"
    task_file.write_text(content)
    code, _, err = cli("run", "reviews", "a good film", "--output", "tasks/reviews.yaml")
    assert "it is the input" in _error_line(code, err)
    assert task_file.read_text() == content


# --- 4. nan and infinity are not settings ---------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--temperature", "inf"), ("--temperature", "nan"),
                                        ("--repetition-penalty", "inf"), ("--top-p", "nan"),
                                        ("--repetition-penalty", "-inf")])
def test_non_finite_generation_options_are_refused(cli, flag, value):
    code, out, err = cli("run", "generation", "-m", "fake-causal", flag, value, "hello")
    assert _error_line(code, err) == f"{flag} must be a finite number, got {float(value)!r}"
    assert out == ""


def test_non_finite_options_are_refused_from_python_and_task_files(runtime):
    from nlpapp.options import OptionError

    task = runtime.task("generation")
    for value in (float("inf"), float("nan"), 10 ** 400):  # a YAML integer too large for a float
        with pytest.raises(OptionError, match="option 'temperature' must be a finite number"):
            task.parse_options({"temperature": value})


@pytest.mark.parametrize("name", ["lr", "holdout", "warmup_ratio", "weight_decay", "max_grad_norm", "lora_dropout"])
def test_non_finite_training_settings_are_refused(name):
    from nlpapp.training.config import TrainConfig

    with pytest.raises(NlpappError, match=rf"^--{name.replace('_', '-')} must be a finite number, got nan$"):
        TrainConfig(task="summarization", data=["x.jsonl"], output="out", **{name: float("nan")})


def test_check_types_refuses_non_finite_numbers_in_any_config():
    from dataclasses import dataclass

    from nlpapp.configs import check_types, setting

    @dataclass
    class Config:
        rate: float = setting(0.5, "A rate.")

    for value in (float("inf"), float("-inf"), float("nan"), 10 ** 400):
        with pytest.raises(NlpappError, match="^--rate must be a finite number"):
            check_types(Config(rate=value))


# --- 5. other malformed input: one line, not a traceback ------------------------------------------

@pytest.mark.parametrize("name,content,problem", [
    ("deep.jsonl", '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n", "deep.jsonl:1: JSON nested too deeply"),
    ("number.jsonl", '{"text": "hi", "id": ' + "1" * 5000 + "}\n",
     "number.jsonl:1: JSON with a number too long to read"),
    ("extra.csv", "text\nhello, world\n",
     "extra.csv:2: 2 fields where the header has 1; quote a field that contains a comma"),
])
def test_malformed_files_fail_on_one_line(cli, tmp_path, name, content, problem):
    data = tmp_path / name
    data.write_text(content)
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data))
    assert _error_line(code, err) == f"{tmp_path}/{problem}"


def test_a_csv_field_longer_than_the_csv_modules_limit_is_read(cli, tmp_path):
    data = tmp_path / "long.csv"
    data.write_text("id,text\n1," + "great " * 40_000 + "\n")  # 240 KB; csv stops at 128 KiB by default
    code, out, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["label"] == "positive"


def test_a_byte_order_mark_does_not_rename_the_first_column(cli, tmp_path):
    data = tmp_path / "excel.csv"
    data.write_bytes("\ufefftext,id\nawful,1\n".encode())
    code, out, err = cli("run", "sentiment", "-m", "fake-classifier", "--input", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["label"] == "negative"
