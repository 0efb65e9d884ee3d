"""``mcp-server-heartbeat statusline``: one short line for Claude Code's status line.

Claude Code runs the configured command on every status-line refresh and
passes a JSON object on stdin with ``session_id``, ``cwd`` and
``workspace: {current_dir, project_dir}``. This prints, for that session::

    ♥ 043 #7 · beat 12s ago · 2 others live
    ⚠ lost 044 to e5b2f9c1 · beat 6m44s ago (stale) · 4 others live

After ``/clear`` Claude Code names a new conversation id while the MCP server
it started keeps running under the old one: when the id on stdin has no record
of a running server, the line shows the live server whose client is one of
this command's ancestors (the start hook finds it the same way).

It runs on every refresh, so it is built to stay cheap: it never takes the
lock and never writes; records are read as plain JSON (no pydantic models)
and classified by the one reader's rules, as everywhere else
(:func:`~mcp_server_heartbeat.session.readers.classify` and
:func:`~mcp_server_heartbeat.session.readers.is_live`, with proof of death
from :func:`~mcp_server_heartbeat.host.probe.probe_process`); and it never fails: any
problem becomes a short line and exit code 0, because a broken status line
helps nobody.
"""

from __future__ import annotations

import json
import os
import sys
from collections import namedtuple

from ..domain.clock import format_duration
from ..domain.liveness import Thresholds
from ..domain.process import MemoProbe
from ..host.config import SCOPES, Flags, resolve_config
from ..host.probe import ancestor_pids, probe_process
from ..host.process_space import host_name, observer_here
from ..session import readers
from ..store import open_light_reader
from . import CONFIG_VALUE_FLAGS, EXIT_OK
from .flag_words import value_flags
from .plain import as_float, as_int, as_str, as_time

TYPE_CHECKING = False
if TYPE_CHECKING:  # it runs on every refresh: no typing, dataclasses, pathlib or socket
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from typing import Any, TextIO

    from ..host.probe import ProcessProbe

MAX_STDIN_BYTES = 1024 * 1024


def read_input(stream: TextIO) -> dict[str, Any]:
    """Claude Code's status-line JSON, or {} when stdin is empty, a terminal or not JSON."""
    try:
        if stream.isatty():
            return {}
        data = json.loads(stream.read(MAX_STDIN_BYTES) or "{}")
    except (ValueError, OSError):
        return {}
    return data if isinstance(data, dict) else {}


def run(args: object, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """Print one line for the session named on stdin (or ``--session-id``). Exit 0."""
    stream = out or sys.stdout
    data = read_input(stdin or sys.stdin)
    try:
        line = render(args, data, os.environ)
    except Exception as exc:  # a status line never breaks: show the problem briefly
        text = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        line = f"♥ heartbeat: {text}"
    stream.write(line + "\n")
    return EXIT_OK


def main(words: Sequence[str] = ()) -> int:
    """``mcp-server-heartbeat statusline [FLAGS]`` when :func:`given_flags` reads
    ``words`` (the arguments after ``statusline``): the entry point calls this
    directly, skipping the argument parser (argparse and logging stay unimported)."""
    args = given_flags(words)
    assert args is not None, "the entry point checks given_flags first"
    return run(args)


class _NoFlags:
    """Parsed arguments: the configuration flags given, as attributes."""


def given_flags(words: Sequence[str]) -> _NoFlags | None:
    """The configuration flags in ``words``, read as the argument parser reads
    them (``--dir X`` or ``--dir=X``, the last one wins), or None when ``words``
    holds anything else (an abbreviation, ``--help``, a flag without its value,
    a ``--scope`` it refuses): the parser then decides, and reports errors."""
    given = value_flags(words, CONFIG_VALUE_FLAGS)
    if given is None or given.get("scope", SCOPES[0]) not in SCOPES:
        return None
    args = _NoFlags()
    for name, value in given.items():
        setattr(args, name, value)
    return args


def _flags(args: object) -> Flags:
    """The configuration flags given: ``args`` is the parser's namespace (a flag not
    given is absent or None) or :class:`_NoFlags`."""
    return Flags(**{name: getattr(args, name, None) for name in Flags._fields})


def render(args: object, data: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The line for ``data`` (Claude Code's status-line JSON).

    The project root is ``--root``, else ``CLAUDE_PROJECT_DIR``, else the
    ``workspace.project_dir`` Claude Code sends (so no git call is needed).

    Raises:
        ConfigError: a bad setting (shown on the status line by :func:`run`).
    """
    raw_workspace = data.get("workspace")
    workspace: Mapping[str, Any] = raw_workspace if isinstance(raw_workspace, dict) else {}
    flags = _flags(args)
    project_dir = workspace.get("project_dir") or data.get("cwd")
    if not flags.root and not env.get("CLAUDE_PROJECT_DIR") and isinstance(project_dir, str):
        flags = flags._replace(root=project_dir or None)
    cwd = workspace.get("current_dir") or data.get("cwd")
    here = cwd if isinstance(cwd, str) and os.path.isdir(cwd) else os.getcwd()
    config = resolve_config(flags, env, here)
    if not config.enabled.value:
        return "♥ session tracking is off"
    session_id = (
        data.get("session_id")
        or getattr(args, "session_id", None)
        or env.get("CLAUDE_CODE_SESSION_ID")
    )
    reader = open_light_reader(config)
    return line_for(
        reader.session_records,
        session_id if isinstance(session_id, str) else None,
        reader.now(),
        float(config.stale_after.value),
        float(config.idle_after.value),
        host_name(),
        probe_process,
        ancestors=ancestor_pids,
    )


def line_for(
    records_of: Callable[[], list[dict[str, Any]]],
    session_id: str | None,
    now: datetime,
    stale_after: float,
    idle_after: float,
    host: str,
    probe: ProcessProbe,
    ancestors: Callable[[], frozenset[int]] = frozenset,
) -> str:
    """Compose the line: plan and token, heartbeat age, other live sessions, lost claim.

    ``records_of`` returns the session records as plain dicts (the store's light
    reader, :func:`~mcp_server_heartbeat.store.open_light_reader`). ``now`` is
    aware UTC; ``stale_after``/``idle_after`` are seconds. ``ancestors`` returns
    this command's ancestor pids; it is called only when ``session_id`` has no
    record of a running server (after ``/clear``). ``probe`` is asked once per
    recorded process (:class:`~mcp_server_heartbeat.domain.process.MemoProbe`).
    """
    thresholds = Thresholds(stale_after=stale_after, idle_after=idle_after)
    observer = observer_here(session_id, host)
    probe = MemoProbe(probe)  # each process probed once per line, as every listing does

    def status_of(record: Mapping[str, Any]) -> str:
        return readers.classify(LightRecord.of(record), now, observer, probe, thresholds).status

    own: dict[str, Any] | None = None
    records = records_of()
    for record in records:
        if session_id is not None and record.get("session_id") == session_id:
            own = record
    if own is None or _without_server(own):
        server = _conversation_server(records, ancestors, host, status_of)
        own = server or own
    others = 0
    mine = {session_id, None if own is None else own.get("session_id")}
    for record in records:
        if record.get("session_id") in mine:
            continue
        if record.get("ended_at") is not None:
            continue
        if readers.is_live(LightRecord.of(record), now, observer, probe, thresholds):
            others += 1
    others_text = f"{others} other{'s' if others != 1 else ''} live"
    if own is None:
        what = "no session record" if session_id else "no session id"
        return f"♥ {what} · {others_text}"
    liveness = readers.classify(LightRecord.of(own), now, observer, probe, thresholds)
    status = liveness.status
    age = liveness.heartbeat_age_s
    beat = "no beat" if age is None else f"beat {format_duration(age)} ago"
    if status not in readers.LIVE:
        beat += f" ({status})"
    lost = own.get("claim_lost")
    if own.get("plan_id"):
        head = f"♥ {own['plan_id']} #{own.get('fencing_token')}"
    elif isinstance(lost, dict) and lost.get("plan_id"):
        taken_by = lost.get("taken_by")
        to = f" to {str(taken_by)[:8]}" if taken_by else ""
        head = f"⚠ lost {lost['plan_id']}{to}"
    else:
        head = "♥ no plan"
    return f"{head} · {beat} · {others_text}"


def _without_server(record: Mapping[str, Any]) -> bool:
    """True for a record no server runs for: ended, or still owned by the client
    process itself (written by the start hook, not adopted by a server)."""
    return record.get("ended_at") is not None or record.get("pid") == record.get("client_pid")


def _conversation_server(
    records: list[dict[str, Any]],
    ancestors: Callable[[], frozenset[int]],
    host: str,
    status_of: Callable[[Mapping[str, Any]], str],
) -> dict[str, Any] | None:
    """The live server record whose client is an ancestor of this process
    (:func:`~mcp_server_heartbeat.session.readers.conversation_server`); None if none."""
    lineage = ancestors()
    if not lineage:
        return None
    by_id = {str(record.get("session_id")): record for record in records}
    found = readers.conversation_server(
        (LightRecord.of(record) for record in records),
        lineage,
        host,
        lambda light: status_of(by_id[light.session_id]) in readers.LIVE,
    )
    return None if found is None else by_id[found.session_id]


class LightRecord(
    namedtuple(
        "LightRecord",
        (
            "session_id",
            "host",
            "pid",
            "pid_started_at",
            "pid_start_ticks",
            "client_pid",
            "started_at",
            "last_heartbeat",
            "last_call_at",
            "ended_at",
            "boot_id",
            "pid_namespace",
            "time_namespace",
            "last_heartbeat_boottime",
        ),
        defaults=(None, None, None, None),
    )
):
    """The fields of a session record that the liveness rules read, parsed from
    plain JSON without pydantic (a :class:`~mcp_server_heartbeat.domain.liveness.RecordLike`):
    the same names and types as :class:`~mcp_server_heartbeat.domain.models.SessionRecord`
    (times aware UTC ``datetime``, pids ``int``), None where the record has no
    valid value. Immutable (a named tuple)."""

    __slots__ = ()

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> LightRecord:
        """Parse ``record``; a field of the wrong type counts as missing."""
        host = record.get("host")
        return cls(
            session_id=str(record.get("session_id")),
            host=host if isinstance(host, str) else None,
            pid=as_int(record.get("pid")),
            pid_started_at=as_time(record.get("pid_started_at")),
            pid_start_ticks=as_int(record.get("pid_start_ticks")),
            client_pid=as_int(record.get("client_pid")),
            started_at=as_time(record.get("started_at")),
            last_heartbeat=as_time(record.get("last_heartbeat")),
            last_call_at=as_time(record.get("last_call_at")),
            ended_at=as_time(record.get("ended_at")),
            boot_id=as_str(record.get("boot_id")),
            pid_namespace=as_str(record.get("pid_namespace")),
            time_namespace=as_str(record.get("time_namespace")),
            last_heartbeat_boottime=as_float(record.get("last_heartbeat_boottime")),
        )


__all__ = ["LightRecord", "line_for", "read_input", "render", "run"]
