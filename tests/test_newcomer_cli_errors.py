"""Issue 11 part 9: click's usage errors in nlpapp's own format (``nlpapp: error: ...``),
still exit 2 and still pointing at --help."""

import pytest


@pytest.mark.parametrize("args,message,command", [
    (["run", "sentiment", "--foo", "x"], "no such option '--foo'", "nlpapp run sentiment"),
    (["run", "sentiment", "--dtype", "float8", "x"],
     "invalid value for '--dtype': 'float8' is not one of 'auto', 'float32', 'bfloat16', 'float16'",
     "nlpapp run sentiment"),
    (["train", "sentiment", "--data", "x.jsonl"], "missing option '-o' / '--output'", "nlpapp train sentiment"),
    (["eval", "sentiment", "--data", "x.jsonl", "--limit", "0"],
     "invalid value for '--limit': 0 is not in the range x>=1", "nlpapp eval sentiment"),
    (["adapters", "show"], "missing argument 'NAME'", "nlpapp adapters show"),
    (["runz"], "no such command 'runz'. (Did you mean one of: 'run', 'runs'?)", "nlpapp"),
])
def test_usage_errors_in_nlpapp_format(cli, args, message, command):
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.splitlines() == [f"nlpapp: error: {message}", f"Try '{command} --help' for help."]


def test_user_errors_keep_exit_1_and_no_hint(cli):
    code, _, err = cli("run", "sentiment", "-m", "fake-classifier", "   ")
    assert code == 1 and err.splitlines() == ["nlpapp: error: argument 1: field 'text' is empty"]


def test_a_bare_group_still_shows_its_help(cli):
    code, out, err = cli("adapters")
    assert "Usage: nlpapp adapters" in out + err and "nlpapp: error" not in err
