"""The command-line flags every command shares, and the parser whose errors are
one line on stderr (exit 2): imported by the entry point and every command."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..host.config import SCOPES, Flags
from . import EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


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
        choices=list(SCOPES),
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
        "--store",
        default=default,
        metavar="URL",
        help="team mode: a postgresql:// URL (env HEARTBEAT_STORE; default: the heartbeat "
        "directory); leave the password out: libpq reads PGPASSWORD and ~/.pgpass",
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
        store=getattr(args, "store", None),
    )


__all__ = ["Parser", "add_config_flags", "flags_of"]
