"""An MCP client's command line is parsed without the sub-command parsers, and
mostly without argparse, with the same result as the full parser."""

from __future__ import annotations

import pytest

from mcp_server_heartbeat.cli.args import flags_of
from mcp_server_heartbeat.cli.main import _top_parser, build_parser, serve_args, serve_only

SERVE_LINES = [
    [],
    ["--dir", "d", "--session-id", "s1"],
    ["--dir=d", "--root=/r", "--scope", "worktree", "--log-level", "DEBUG"],
    ["--interval", "5", "--stale-after", "60", "--idle-after", "90", "--store", "x"],
    ["--dir", "status"],  # a value that is a command's name is still a value
]


@pytest.mark.parametrize("argv", SERVE_LINES)
def test_a_serve_line_parses_as_the_full_parser_does(argv):
    assert serve_only(argv)
    full = vars(build_parser().parse_args(argv))
    top = vars(_top_parser().parse_args(argv))
    assert full.pop("command") is None and "run" not in full
    assert top == full


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["serve"],
        ["--dir", "d", "status"],
        ["--help"],
        ["-h"],
        ["--version"],
        ["--sess", "s1"],  # an abbreviation: the full parser decides
        ["--dir"],  # a flag without its value: the full parser's error
        ["--unknown=1"],
        ["-x"],
    ],
)
def test_anything_else_goes_through_the_full_parser(argv):
    assert not serve_only(argv)


@pytest.mark.parametrize(
    "argv",
    [
        *SERVE_LINES,
        ["--dir", "a", "--dir", "b"],  # the last one wins, as with the parser
        ["--dir=", "--session-id=-x", "--root", ""],  # "=" takes any value, even "-x"
        ["--scope=worktree", "--log-level=ERROR"],
    ],
)
def test_a_serve_line_reads_without_argparse_as_the_parser_reads_it(argv, monkeypatch):
    monkeypatch.delenv("HEARTBEAT_LOG_LEVEL", raising=False)
    given = serve_args(argv)
    assert given is not None
    parsed = _top_parser().parse_args(argv)
    assert given == (flags_of(parsed), parsed.log_level)


def test_the_log_level_defaults_to_the_environment_as_with_the_parser(monkeypatch):
    monkeypatch.setenv("HEARTBEAT_LOG_LEVEL", "WARNING")
    given = serve_args(["--dir", "d"])
    assert given is not None and given[1] == "WARNING" == _top_parser().parse_args([]).log_level


@pytest.mark.parametrize(
    "argv",
    [
        ["--dir", "-x"],  # a value like a flag: the parser decides (here: an error)
        ["--interval", "-5"],  # the parser takes it as a negative number
        ["--scope", "bad"],
        ["--scope=bad"],
        ["--log-level", "debug"],
        ["--dir"],
        ["status"],
        ["--sess", "s1"],
    ],
)
def test_anything_the_parser_might_read_otherwise_is_left_to_it(argv):
    assert serve_args(argv) is None


def test_a_bad_choice_is_refused_the_same_way(capsys):
    for parser in (build_parser(), _top_parser()):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["--scope", "bad"])
        assert exc.value.code == 2
    first, second = capsys.readouterr().err.splitlines()
    assert first == second and "--scope" in first


STATUSLINE_LINES = [
    [],
    ["--dir", "d"],
    ["--root=/r", "--dir", "d", "--session-id", "s1", "--scope", "worktree"],
    ["--interval", "5", "--stale-after=60", "--idle-after", "90", "--store", "x"],
    ["--dir", "a", "--dir", "b"],  # the last one wins, as with the parser
    ["--dir="],
]


@pytest.mark.parametrize("words", STATUSLINE_LINES)
def test_statusline_flags_read_as_the_parser_reads_them(words):
    from mcp_server_heartbeat.cli.statusline import _flags, given_flags

    fast = given_flags(words)
    assert fast is not None
    parsed = build_parser().parse_args(["statusline", *words])
    assert _flags(fast) == _flags(parsed)
    assert getattr(fast, "session_id", None) == getattr(parsed, "session_id", None)


@pytest.mark.parametrize(
    "words",
    [
        ["--help"],
        ["--di", "d"],  # an abbreviation
        ["--dir"],
        ["--dir", "--root", "r"],
        ["--scope", "bad"],
        ["--scope=bad"],
        ["--log-level", "DEBUG"],  # a top-level flag, not the command's
        ["extra"],
    ],
)
def test_statusline_leaves_anything_else_to_the_parser(words):
    from mcp_server_heartbeat.cli.statusline import given_flags

    assert given_flags(words) is None


@pytest.mark.parametrize("argv", [["--scope", "bad"], ["--dir", "-x"], ["--log-level=debug"]])
def test_a_serve_line_the_fast_read_refuses_gets_the_parsers_error(argv, capsys):
    from mcp_server_heartbeat.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("mcp-server-heartbeat: ")
