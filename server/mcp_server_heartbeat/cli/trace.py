"""``mcp-server-heartbeat trace [--branch B] [--format markdown|json]``: the
Session Trace of a branch, ready to paste into a PR body (seed: the
session-tracking codex, section 7)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from ..domain.clock import format_utc
from ..domain.errors import InvalidInputError
from ..domain.validation import validate_label
from ..host.git import git_branch, git_output
from ..session.observe import Trace, build_trace, format_duration
from . import EXIT_OK
from .common import guarded, open_reader


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the trace of ``--branch`` (default: the current git branch). Exit 0, 1 or 2."""
    stream = out or sys.stdout

    def body() -> int:
        reader = open_reader(args)
        # The branch of the worktree this runs in (the root may be the main checkout);
        # symbolic-ref also names the branch of a repository with no commit yet.
        here = Path(reader.config.worktree.value or reader.config.root.value)
        branch = (
            args.branch or git_branch(here) or git_output(["symbolic-ref", "--short", "HEAD"], here)
        )
        if not branch:
            raise InvalidInputError("no --branch given and this worktree is not on a git branch")
        validate_label(branch, "--branch", 256)
        records, _ = reader.store.list_sessions()
        trace = build_trace(records, branch)
        if args.format == "json":
            stream.write(json.dumps(trace.model_dump(mode="json"), indent=2) + "\n")
        else:
            stream.write(render_markdown(trace))
        return EXIT_OK

    return guarded("trace", body)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    text = format_utc(moment)
    return text[:10] + " " + text[11:19]


def render_markdown(trace: Trace) -> str:
    """The trace as a Markdown section: a summary, then one table row per session."""
    worktrees = ", ".join(f"`{w}`" for w in trace.worktrees) or "-"
    count = len(trace.sessions)
    lines = [
        "## Session Trace",
        "",
        f"- Branch: `{trace.branch}`",
        f"- Worktree: {worktrees}",
        f"- Sessions: {count}",
        f"- Cumulative active time: {format_duration(trace.cumulative_active_s)}",
        "",
    ]
    if not trace.sessions:
        lines.append("_No session recorded on this branch._")
        return "\n".join(lines) + "\n"
    lines.append("| Session | Entrypoint | Role | Started (UTC) | Last heartbeat (UTC) | Active |")
    lines.append("|---|---|---|---|---|---|")
    for row in trace.sessions:
        lines.append(
            f"| `{row.short_id}` | {_cell(row.entrypoint)} | {_cell(row.role)} | "
            f"{_when(row.started_at)} | {_when(row.last_heartbeat)} | "
            f"{format_duration(row.active_s)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(value: str | None) -> str:
    return "-" if not value else value.replace("|", "\\|")


__all__ = ["render_markdown", "run"]
