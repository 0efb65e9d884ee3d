"""``git-hook HOOK``: the entry point git's hooks run, cheap when nobody is committing.

Most commits in a repository may be made by people: for them the hooks must
cost as little as possible. This module decides without pydantic (plain JSON
records through the store's light reader, as the status line) whether a
session can be committing at all: ``HEARTBEAT_SESSION_ID`` is set, or a live
MCP server's client is an ancestor of this process
(:func:`~mcp_server_heartbeat.session.readers.conversation_server`). Only then
is :mod:`.git_cmd` (the models, the store, the rules) imported. ``pre-push``
always takes the full path: it also judges the trailers of the pushed commits,
whoever pushes them.

A watchdog of :data:`HOOK_DEADLINE_S` covers both paths: a hook still running
then gives up and lets the commit or push through (fail open), as it does on
any error.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from ..domain.liveness import process_alive
from ..host.config import Flags, resolve_config
from ..host.identity import SESSION_ENV, observer_here
from ..host.probe import ancestor_pids, probe_process
from ..session.readers import conversation_server
from ..store import open_light_reader
from . import EXIT_OK
from .args import flags_of
from .watchdog import Deadline, deadline

HOOK_DEADLINE_S = 3.0
"""A git hook still running after this many seconds gives up and lets the commit
or push through (an unreachable database must not hold every commit)."""


def may_be_committing(env: Mapping[str, str], cwd: Path, flags: Flags) -> bool:
    """False when no session can be making this commit: no ``HEARTBEAT_SESSION_ID``
    and no live server record whose client is an ancestor of this process (or
    session tracking is off). Reads plain JSON records, never the lock.

    Raises:
        ConfigError: a bad setting (the hook reports it and lets the commit through).
    """
    if env.get(SESSION_ENV):
        return True
    config = resolve_config(flags, env, cwd)
    if not config.enabled.value:
        return False
    from .statusline import LightRecord

    records = [LightRecord.of(record) for record in open_light_reader(config).session_records()]
    if not records:
        return False
    host = socket.gethostname()
    here = observer_here(None, host)
    found = conversation_server(
        records, ancestor_pids(), host, lambda r: process_alive(r, here, probe_process) is True
    )
    return found is not None


def run(args: argparse.Namespace) -> int:
    """``git-hook HOOK [ARGS...]``: exit 0, or 1 when :mod:`.git_cmd` refuses."""
    hook: str = args.git_hook
    try:
        with deadline(HOOK_DEADLINE_S):
            try:
                if hook != "pre-push" and not may_be_committing(
                    os.environ, Path.cwd(), flags_of(args)
                ):
                    return EXIT_OK
            except Exception as exc:  # fail open; the full path may still decide
                print(f"heartbeat {hook}: {exc} (check skipped)", file=sys.stderr)
                return EXIT_OK
            from .git_cmd import run_git_hook

            return run_git_hook(args)
    except Deadline:
        print(
            f"heartbeat {hook}: gave up after {HOOK_DEADLINE_S:g} s (check skipped)",
            file=sys.stderr,
        )
        return EXIT_OK


__all__ = ["HOOK_DEADLINE_S", "may_be_committing", "run"]
