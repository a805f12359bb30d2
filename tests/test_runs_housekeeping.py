"""Finding and tidying runs as a newcomer does: a run named by any unique prefix or suffix
of its id (as git names commits) or by 'latest'; a list with a header, the model, adapter
and data, and filters; ``runs rm``."""

import json
import time

import pytest

from nlpapp import runs

OLD, MIDDLE, NEW = "20250101-100000-000000-aaaa", "20250101-110000-000000-bbbb", "20250102-090000-000000-abcd"


def record(run_id: str, kind: str = "eval", task: str = "sentiment", status: str = "succeeded",
           data: list[str] | None = None, **extra) -> None:
    """A run record as the commands write them, with a chosen id."""
    r = runs.RunRecord(kind, task, {"model": None, "adapter": None}, data or [], id=run_id)
    r.metrics = {"accuracy": {"value": 50.0, "ci95": None, "signature": "classification:labels=a+b",
                              "metric": "classification"}}
    r.extra = extra
    r.write(status, time.time(), error="ValueError: boom" if status == "failed" else None)


@pytest.fixture
def three_runs(nlpapp_home):
    record(OLD)
    record(MIDDLE, kind="train", task="generation", status="failed")
    record(NEW)


def shown_id(cli, ref: str) -> str:
    code, out, err = cli("runs", "show", ref)
    assert code == 0, err
    return json.loads(out)["id"]


def test_a_run_is_named_by_a_unique_prefix_or_suffix_or_latest(cli, three_runs):
    assert shown_id(cli, "20250102") == NEW  # a prefix
    assert shown_id(cli, "bbbb") == MIDDLE  # a suffix: the random part
    assert shown_id(cli, "110000-000000-bbbb") == MIDDLE
    assert shown_id(cli, "latest") == NEW
    assert shown_id(cli, OLD) == OLD
    code, out, err = cli("runs", "diff", "aaaa", "latest")
    assert code == 0, err
    assert out.startswith(f"{OLD} -> {NEW}\n")
    code, out, err = cli("runs", "report", "abcd")
    assert code == 0, err
    assert out.strip() == str(runs.runs_dir() / NEW / "report.html")


def test_an_ambiguous_name_is_one_line_naming_the_candidates(cli, three_runs):
    code, out, err = cli("runs", "show", "20250101")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "ambiguous" in err and OLD in err and MIDDLE in err and NEW not in err
    with pytest.raises(runs.AmbiguousRunError):
        runs.resolve("2025")


def test_latest_without_any_run_is_one_line(cli):
    code, _, err = cli("runs", "show", "latest")
    assert code == 1 and err.count("\n") == 1 and "no runs are recorded" in err


def test_list_has_a_header_and_the_model_adapter_and_data_in_short(cli, nlpapp_home, tmp_path):
    data = tmp_path / "corpora" / "dev.jsonl"
    data.parent.mkdir()
    data.write_text('{"text": "a", "label": "b"}\n')
    record(OLD, data=[str(data)], model={"spec": "fake-classifier"},
           adapter={"name": str(tmp_path / "ad" / "headlines")})
    record(NEW, kind="train", task="generation", data=[str(data)],
           model={"spec": str(tmp_path / "models" / "tiny-causal")}, adapter={"output": str(tmp_path / "a1/")})
    code, out, err = cli("runs", "list")
    assert code == 0, err
    header, first, second = out.splitlines()
    assert header.split() == ["ID", "KIND", "TASK", "STATUS", "SECONDS", "MODEL", "ADAPTER", "DATA", "SCORES"]
    assert first.split()[:4] == [OLD, "eval", "sentiment", "succeeded"]
    assert first.split()[5:9] == ["fake-classifier", "headlines", "dev.jsonl", "accuracy"]
    assert second.split()[5:8] == ["tiny-causal", "a1", "dev.jsonl"]
    assert str(tmp_path) not in out  # paths are shown by their last component


def listed(cli, *options: str) -> list[str]:
    code, out, err = cli("runs", "list", "--json", *options)
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def test_list_filters_by_kind_task_status_and_keeps_the_newest_n(cli, three_runs):
    assert listed(cli) == [OLD, MIDDLE, NEW]
    assert listed(cli, "--kind", "train") == [MIDDLE]
    assert listed(cli, "--task", "sentiment") == [OLD, NEW]
    assert listed(cli, "--status", "failed") == [MIDDLE]
    assert listed(cli, "--limit", "2") == [MIDDLE, NEW]
    assert listed(cli, "--task", "sentiment", "--limit", "1") == [NEW]
    code, out, _ = cli("runs", "list", "--kind", "run")
    assert code == 0 and out.strip() == "no run matches (3 recorded)"


def test_list_by_task_takes_its_old_or_new_name_and_finds_records_of_both(cli, three_runs):
    """OLD and NEW were recorded as "sentiment", before the task was renamed; LATER after."""
    later = "20250103-090000-000000-cdef"
    record(later, task="text-classification")
    assert listed(cli, "--task", "text-classification") == [OLD, NEW, later]
    assert listed(cli, "--task", "sentiment") == [OLD, NEW, later]
    assert listed(cli, "--task", "text-generation") == [MIDDLE]


def test_rm_asks_first_and_removes_the_named_runs(cli, three_runs):
    code, _, _ = cli("runs", "rm", "aaaa", stdin="n\n")
    assert code != 0 and listed(cli) == [OLD, MIDDLE, NEW]
    code, out, err = cli("runs", "rm", "aaaa", stdin="y\n")
    assert code == 0, err
    assert f"removed run {OLD}" in out and listed(cli) == [MIDDLE, NEW]
    assert not (runs.runs_dir() / OLD).exists()
    code, out, err = cli("runs", "rm", "latest", "-y")
    assert code == 0, err
    assert listed(cli) == [MIDDLE]


def test_rm_of_a_run_that_does_not_exist_is_one_line_and_removes_nothing(cli, three_runs):
    code, out, err = cli("runs", "rm", "aaaa", "no-such-run", "-y")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "unknown run 'no-such-run'" in err
    assert listed(cli) == [OLD, MIDDLE, NEW]
    code, _, err = cli("runs", "rm")
    assert code == 1 and err.count("\n") == 1 and "--all-failed" in err


def test_rm_all_failed(cli, three_runs):
    code, out, err = cli("runs", "rm", "--all-failed", "-y")
    assert code == 0, err
    assert out == f"removed run {MIDDLE}\n" and listed(cli) == [OLD, NEW]
    code, out, _ = cli("runs", "rm", "--all-failed", "-y")
    assert code == 0 and out == "no failed runs to remove\n"


def test_rm_with_nothing_to_read_the_answer_from_says_pass_y(cli, nlpapp_home):
    from nlpapp import runs

    with runs.recording("eval", "sentiment", {}, []) as record:
        pass
    code, _, err = cli("runs", "rm", record.id, stdin="")
    assert code == 1 and err.strip().endswith("no answer to read; pass -y to go ahead")
    assert runs.load(record.id)["id"] == record.id  # still there
