"""Command line: ``mcp-server-heartbeat [options]`` serves MCP over stdio.

Bad values fail before the transport opens, with one line on stderr naming
the value, and exit code 2. Only stderr is written: stdout is the protocol.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .config import Flags
from .errors import HeartbeatError

PROG = "mcp-server-heartbeat"
EXIT_OK = 0
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked (it costs
    an ``importlib.metadata`` import, and every command builds this parser)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands are added here as they come)."""
    parser = _Parser(
        prog=PROG,
        description="Stdio MCP server: session heartbeats and exclusive plan claims "
        "in a project's heartbeat directory.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("HEARTBEAT_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (env HEARTBEAT_LOG_LEVEL; default INFO)",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="print the version")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser("serve", help="serve MCP over stdio (the default)")
    add_config_flags(serve_parser, sub_command=True)
    serve_parser.set_defaults(run=serve)
    from .commands import register, register_hooks

    register(commands)
    register_hooks(commands)
    return parser


def add_config_flags(parser: argparse.ArgumentParser, sub_command: bool = False) -> None:
    """The flags every command shares (design: configuration, priority 1).

    On a sub-command's parser pass ``sub_command=True``: the flags then default
    to "not given" (``SUPPRESS``), so ``mcp-server-heartbeat --dir X status`` and
    ``mcp-server-heartbeat status --dir X`` both work.
    """
    default = argparse.SUPPRESS if sub_command else None
    flag = parser.add_argument
    flag(
        "--root",
        default=default,
        help="where the project is (default: CLAUDE_PROJECT_DIR, else cwd); normalised to "
        "the repository's root, so every worktree and subdirectory shares one directory",
    )
    flag("--dir", default=default, help="heartbeat directory, relative to root (env HEARTBEAT_DIR)")
    flag(
        "--scope",
        default=default,
        choices=["repository", "worktree"],
        help="one heartbeat directory per repository (default) or per worktree "
        "(env HEARTBEAT_SCOPE)",
    )
    flag("--interval", default=default, help="seconds between heartbeats (HEARTBEAT_INTERVAL; 30)")
    flag(
        "--stale-after",
        default=default,
        help="seconds without heartbeat before stale (HEARTBEAT_STALE_AFTER; 300)",
    )
    flag(
        "--idle-after",
        default=default,
        help="seconds without a tool call before idle (HEARTBEAT_IDLE_AFTER; 600)",
    )
    flag(
        "--session-id",
        default=default,
        help="session id (default: CLAUDE_CODE_SESSION_ID, else new)",
    )


def flags_of(args: argparse.Namespace) -> Flags:
    """The configuration flags from parsed arguments."""
    return Flags(
        root=args.root,
        dir=args.dir,
        scope=args.scope,
        interval=args.interval,
        stale_after=args.stale_after,
        idle_after=args.idle_after,
        session_id=args.session_id,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    With no sub-command it serves MCP over stdio. A sub-command module
    registers itself in :func:`build_parser` and sets ``args.run``.
    """
    args = build_parser().parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        return serve(args)
    code: int = run(args)
    return code


def serve(args: argparse.Namespace) -> int:
    """Open the session, then serve MCP on stdio until the client goes.

    Job-control signals (Ctrl-Z) are ignored from the start (``jobcontrol``).
    """
    from .jobcontrol import ignore_job_control

    ignore_job_control()
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format=f"{PROG}: %(levelname)s %(message)s"
    )
    from .runtime import open_runtime

    try:
        runtime = open_runtime(flags_of(args), os.environ, Path.cwd())
    except HeartbeatError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import anyio

    from .app import build_app
    from .protocol import serve_stdio

    app = build_app(runtime)
    config = runtime.config
    if runtime.service is None:
        print(
            f"{PROG}: session tracking is disabled ({config.enabled.source}); serving MCP on "
            "stdio, every tool will say so",
            file=sys.stderr,
        )
    else:
        print(
            f"{PROG}: session {runtime.service.session_id} recorded in {config.dir_path}, "
            f"heartbeat every {config.interval.value:g} s; serving MCP on stdio "
            f"(add to Claude Code: {connect_command()})",
            file=sys.stderr,
        )
    for warning in runtime.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sys.stderr.flush()
    anyio.run(serve_stdio, app)  # app.run("stdio"), plus answers to malformed lines
    return EXIT_OK


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
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "add_config_flags",
    "build_parser",
    "connect_command",
    "flags_of",
    "main",
]
