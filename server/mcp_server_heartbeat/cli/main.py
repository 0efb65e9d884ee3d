"""Command line: ``mcp-server-heartbeat [options]`` serves MCP over stdio.

Bad values fail before the transport opens, with one line on stderr naming
the value, and exit code 2. Only stderr is written: stdout is the protocol.

An MCP client's command line (only the server's flags) is read without
``argparse`` (:func:`serve_args`); anything else goes through the parser.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.errors import HeartbeatError
from ..domain.gcpause import collection_paused
from ..host.config import SCOPES, Flags
from . import CONFIG_VALUE_FLAGS, EXIT_OK, EXIT_USAGE, PROG
from .flag_words import value_flags

if TYPE_CHECKING:
    import argparse

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands are added here as they come)."""
    from .args import add_config_flags
    from .commands import register, register_git, register_hooks, register_store

    parser = _top_parser()
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="serve MCP over stdio (the default)")
    add_config_flags(serve_parser, sub_command=True)
    serve_parser.set_defaults(run=serve)
    register(commands)
    register_hooks(commands)
    register_store(commands)
    register_git(commands)
    return parser


SERVE_VALUE_FLAGS = frozenset({*CONFIG_VALUE_FLAGS, "--log-level"})
"""The top-level flags that take a value: with only these, spelt in full, the
command line is the server's (what an MCP client runs)."""


def serve_only(argv: Sequence[str]) -> bool:
    """True when ``argv`` is only top-level flags with their values, each spelt in
    full (``--dir X`` or ``--dir=X``): no sub-command, no ``--help``/``--version``,
    no abbreviation. Those parse the same without the sub-command parsers, which
    are then not built (a cost on every server start)."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.partition("=")[0] in SERVE_VALUE_FLAGS and "=" in word:
            i += 1
        elif word in SERVE_VALUE_FLAGS and i + 1 < len(argv):
            i += 2
        else:
            return False
    return True


def serve_args(argv: Sequence[str]) -> tuple[Flags, str] | None:
    """The configuration flags and log level of a server's command line, read as
    the top-level parser reads them, without ``argparse`` (its import and
    parser cost every server start): ``--dir X`` or ``--dir=X``, each flag
    spelt in full, the last one wins, ``--log-level`` defaulting to
    ``HEARTBEAT_LOG_LEVEL``, else ``INFO``.

    None when ``argv`` holds anything else, or anything the parser might read
    otherwise or refuse (a separate value starting with ``-``, a ``--scope`` or
    ``--log-level`` it does not accept): the parser then decides, and reports
    the error. ``tests/test_serve_argv.py`` checks both read the same.
    """
    given = value_flags(argv, SERVE_VALUE_FLAGS)
    if given is None:
        return None
    log_level = given.pop("log_level", None)
    if given.get("scope", SCOPES[0]) not in SCOPES or log_level not in (None, *LOG_LEVELS):
        return None
    return Flags(**given), log_level or os.environ.get("HEARTBEAT_LOG_LEVEL", "INFO")


def _top_parser() -> argparse.ArgumentParser:
    """The top-level parser: the shared flags, ``--log-level``, ``--version``."""
    import argparse

    from .args import Parser, add_config_flags

    class VersionAction(argparse.Action):
        """``--version``, reading the installed version only when asked (it costs
        an ``importlib.metadata`` import, and every command builds this parser)."""

        def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
            sys.stdout.write(f"{parser.prog} {_version()}\n")
            parser.exit(EXIT_OK)

    parser = Parser(
        prog=PROG,
        description="Stdio MCP server: session heartbeats and exclusive plan claims "
        "in a project's heartbeat directory.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("HEARTBEAT_LOG_LEVEL", "INFO"),
        choices=list(LOG_LEVELS),
        help="stderr log level (env HEARTBEAT_LOG_LEVEL; default INFO)",
    )
    parser.add_argument("--version", action=VersionAction, nargs=0, help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    With no sub-command it serves MCP over stdio. A sub-command module
    registers itself in :func:`build_parser` and sets ``args.run``.
    """
    words = sys.argv[1:] if argv is None else list(argv)
    if serve_only(words):  # an MCP client's command line: no sub-command parsers
        given = serve_args(words)  # nor, mostly, argparse
        if given is not None:
            return serve_with(*given)
        return serve(_top_parser().parse_args(words))
    args = build_parser().parse_args(words)
    run = getattr(args, "run", None)
    if run is None:
        return serve(args)
    code: int = run(args)
    return code


def serve(args: argparse.Namespace) -> int:
    """Serve with the parsed arguments' flags and log level (:func:`serve_with`)."""
    from .args import flags_of

    return serve_with(flags_of(args), args.log_level)


def serve_with(flags: Flags, log_level: str) -> int:
    """Open the session, then serve MCP on stdio until the client goes.

    Job-control signals (Ctrl-Z) are ignored from the start (``jobcontrol``).

    The start runs with the cyclic garbage collector paused, and what it built
    is then frozen (``gc.freeze``: never scanned again). It imports the SDK and
    pydantic and builds their models: some 120,000 objects, nearly all kept for
    the life of the process. Collected as they come, they cost some 200
    collections, about a tenth of the start's CPU time (50 ms), to find about a
    thousand objects of garbage, which are kept instead; frozen, they are not
    walked again by the collections that run while the server serves.
    """
    with collection_paused():
        started = _start(flags, log_level)
        gc.freeze()
    if isinstance(started, int):
        return started
    import anyio

    from ..mcp.stdio_lines import serve_stdio

    anyio.run(serve_stdio, started)  # app.run("stdio"), plus answers to malformed lines
    return EXIT_OK


def _start(flags: Flags, log_level: str) -> Any:
    """The MCP server (``mcp.server.build_app``'s) ready to serve, its session
    recorded and the start lines on stderr; or the exit code (an ``int``) when
    the configuration is refused."""
    from ..host.git import start_git_branch
    from ..host.jobcontrol import ignore_job_control

    ignore_job_control()
    cwd = Path.cwd()
    branch = start_git_branch(cwd)  # git runs while the modules below are imported
    logging.basicConfig(
        level=log_level, stream=sys.stderr, format=f"{PROG}: %(levelname)s %(message)s"
    )
    from ..runtime import open_runtime

    try:
        runtime = open_runtime(flags, os.environ, cwd, branch=branch)
    except HeartbeatError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        branch()  # answered already, or waited for: git is never left unreaped
    from ..mcp.server import build_app

    app = build_app(runtime)
    config = runtime.config
    if runtime.service is None:
        print(
            f"{PROG}: session tracking is disabled ({config.enabled.source}); serving MCP on "
            "stdio, every tool will say so",
            file=sys.stderr,
        )
    else:
        where = runtime.store.location if runtime.store is not None else "the store"
        print(
            f"{PROG}: session {runtime.service.session_id} recorded in {where}, "
            f"heartbeat every {config.interval.value:g} s; serving MCP on stdio "
            f"(add to Claude Code: {connect_command()})",
            file=sys.stderr,
        )
    for warning in runtime.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sys.stderr.flush()
    return app


def connect_command(
    argv0: str | None = None, executable: str | None = None, path: str | None = None
) -> str:
    """A ``claude mcp add`` command that starts this very copy from any directory.

    The bare name when ``mcp-server-heartbeat`` on ``PATH`` is this script
    (pipx, ``uv tool``, an activated venv); else the script's absolute path
    (a project venv); else, when run as ``python -m``, the interpreter's
    absolute path with ``-m mcp_server_heartbeat``. The arguments default to
    ``sys.argv[0]``, ``sys.executable`` and ``$PATH`` (tests pass their own).
    """
    import shlex
    import shutil

    script = os.path.abspath(argv0 if argv0 is not None else sys.argv[0])
    found = shutil.which(PROG, path=path if path is not None else os.environ.get("PATH"))
    if os.path.basename(script) == PROG:
        if found and os.path.realpath(found) == os.path.realpath(script):
            command = PROG
        else:
            command = shlex.quote(script)
    else:
        command = f"{shlex.quote(executable or sys.executable)} -m mcp_server_heartbeat"
    return f"claude mcp add heartbeat -- {command}"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp-server-heartbeat")
    except PackageNotFoundError:  # pragma: no cover
        return "0.0.0"


__all__ = [
    "LOG_LEVELS",
    "build_parser",
    "connect_command",
    "main",
    "serve",
    "serve_args",
    "serve_only",
    "serve_with",
]
