"""``mcp-server-heartbeat status [--json] [--all]``: the sessions and the claimed
plans at a glance (the heartbeat manager's active-sessions view).

The table of a heartbeat directory is built from the files read as plain JSON
(:func:`~mcp_server_heartbeat.store.read_plain_records`) and classified
by the one reader's rules (:func:`~mcp_server_heartbeat.session.readers.classify`,
each process probed once), without pydantic. When that read declines (a file
it cannot vouch for, the lock held, no directory, a database store) and for
``--json``, the snapshot is read through the store and its models, which
report unreadable files and the lock's holder: the same table either way.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

from ..domain.clock import format_duration, parse_utc, utc_now
from ..session.shortids import short_ids
from . import EXIT_OK
from .common import guarded, open_reader, reader_config, table, use_colour

TYPE_CHECKING = False
if TYPE_CHECKING:  # the table's path loads neither pydantic, the argument parser nor typing
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from typing import Any, TextIO

    from ..domain.liveness import Liveness
    from ..host.config import Flags
    from ..host.probe import ProcessProbe
    from ..session.observe import Snapshot

LOCK_WAIT_S = 0.5
"""Seconds ``status`` waits before it reports the directory lock's holder: a lock
held that long is not a claim in progress (those take milliseconds). A stopped
holder is reported at once."""


def main(words: Sequence[str]) -> int:
    """``mcp-server-heartbeat status [FLAGS]`` from the entry point (``words``: the
    arguments after ``status``). Only configuration flags (as the status line
    reads them: :func:`~.statusline.given_flags`) and ``--all``: the table from
    plain JSON when :func:`plain_snapshot` can read it, with neither the argument
    parser nor pydantic loaded. Anything else (``--json``, ``--help``, an
    abbreviation, an error to report), or a directory the store must read,
    goes through the parser as every other command."""
    args = given_args(words)
    if args is not None:
        lines: list[str] | None = None

        def body() -> int:
            nonlocal lines
            lines = plain_lines(args, use_colour(sys.stdout), os.environ)
            return EXIT_OK

        code = guarded("status", body)
        if code != EXIT_OK:
            return code
        if lines is not None:
            sys.stdout.write("\n".join(lines) + "\n")
            return EXIT_OK
    from .main import main as cli_main

    return cli_main(["status", *words])


def given_args(words: Sequence[str]) -> Any:
    """The flags of ``status`` in ``words`` when they are configuration flags
    spelt in full and ``--all`` (an object with the parser's attributes, ``json``
    false), else None."""
    from .statusline import given_flags

    rest = [word for word in words if word != "--all"]
    args: Any = given_flags(rest)
    if args is None:
        return None
    args.all = len(rest) != len(words)
    args.json = False
    return args


def _flags(args: Any) -> Flags:
    """The configuration flags given: from the parser's namespace or :func:`given_args`
    (a flag not given is absent or None)."""
    from ..host.config import Flags

    return Flags(**{name: getattr(args, name, None) for name in Flags._fields})


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the snapshot as tables (or JSON with ``--json``). Exit 0, 1 or 2."""
    stream = out or sys.stdout

    def body() -> int:
        if not args.json:
            lines = plain_lines(args, use_colour(stream), os.environ)
            if lines is not None:
                stream.write("\n".join(lines) + "\n")
                return EXIT_OK
        from ..session.observe import read_snapshot

        reader = open_reader(args)
        snapshot = read_snapshot(
            reader.store,
            reader.clock(),
            reader.observer,
            reader.probe,
            reader.thresholds,
            include_ended=args.all,
        )
        holder = reader.store.busy_holder(wait=LOCK_WAIT_S) if snapshot.exists else None
        if args.json:
            payload = snapshot.model_dump(mode="json")
            payload["lock_holder"] = holder
            stream.write(json.dumps(payload, indent=2) + "\n")
        else:
            lines = render(snapshot, use_colour(stream), args.all)
            if holder is not None:
                lines.append(f"directory lock: held by {holder['description']}")
            stream.write("\n".join(lines) + "\n")
        return EXIT_OK

    return guarded("status", body)


class PlainSession:
    """A session read from plain JSON: what the liveness rules read of its record
    (a :class:`~mcp_server_heartbeat.domain.liveness.RecordLike`, datetimes aware
    UTC, as the store's model gives them) and, once judged, the fields of
    :class:`~mcp_server_heartbeat.domain.models.SessionView` the table shows,
    with its rule: no health or time to stale once over (ended or dead)."""

    __slots__ = (
        "boot_id",
        "branch",
        "client_pid",
        "ended_at",
        "health",
        "heartbeat_age_s",
        "host",
        "last_activity",
        "last_call_at",
        "last_heartbeat",
        "last_heartbeat_boottime",
        "pid",
        "pid_namespace",
        "pid_start_ticks",
        "pid_started_at",
        "plan_id",
        "relationship",
        "role",
        "seconds_until_stale",
        "session_id",
        "started_at",
        "status",
        "time_namespace",
        "worktree",
    )

    def __init__(self, record: Mapping[str, Any]) -> None:
        """``record``: a session record :func:`~mcp_server_heartbeat.store.read_plain_records`
        returned (its fields checked there)."""
        get = record.get
        self.session_id: str = record["session_id"]
        self.host: str | None = get("host")
        self.pid: int | None = get("pid")
        self.pid_started_at = _utc(get("pid_started_at"))
        self.pid_start_ticks: int | None = get("pid_start_ticks")
        self.client_pid: int | None = get("client_pid")
        self.started_at = _utc(get("started_at"))
        self.last_heartbeat = _utc(get("last_heartbeat"))
        self.last_call_at = _utc(get("last_call_at"))
        self.ended_at = _utc(get("ended_at"))
        self.boot_id: str | None = get("boot_id")
        self.pid_namespace: str | None = get("pid_namespace")
        self.time_namespace: str | None = get("time_namespace")
        boottime = get("last_heartbeat_boottime")
        self.last_heartbeat_boottime = None if boottime is None else float(boottime)
        self.plan_id: str | None = get("plan_id")
        self.branch: str | None = get("branch")
        self.worktree: str | None = get("worktree")
        self.role: str | None = get("role")
        self.last_activity: str | None = get("last_activity")

    def judge(self, liveness: Liveness) -> None:
        """Take the session's liveness (:func:`~mcp_server_heartbeat.session.readers.classify`)."""
        over = liveness.status in ("ended", "dead")
        self.status: str = liveness.status
        self.health: str | None = None if over else liveness.health
        self.heartbeat_age_s: float | None = liveness.heartbeat_age_s
        self.seconds_until_stale: float | None = None if over else liveness.seconds_until_stale
        self.relationship: str = liveness.relationship


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    found = _PARSED.get(text)
    if found is None:
        found = _PARSED[text] = parse_utc(text)
    return found


_PARSED: dict[str, datetime] = {}
"""Timestamps already parsed by this command (a record's times often repeat)."""


class PlainClaim:
    """A held plan of the table (the fields of ``ClaimView`` it reads)."""

    __slots__ = (
        "acquired_by",
        "fencing_token",
        "held_for_s",
        "holder",
        "holder_status",
        "plan_id",
        "takeover_reason",
    )

    def __init__(
        self, ledger: Mapping[str, Any], now: datetime, holder: PlainSession | None
    ) -> None:
        claimed_at = ledger.get("claimed_at")
        held = None if claimed_at is None else (now - parse_utc(claimed_at)).total_seconds()
        self.plan_id: str = ledger["plan_id"]
        self.holder: str = ledger["holder"]
        self.fencing_token: int = ledger["fencing_token"]
        self.held_for_s: float | None = None if held is None else round(max(0.0, held), 3)
        self.acquired_by: str | None = ledger.get("acquired_by")
        self.takeover_reason: str | None = ledger.get("takeover_reason")
        self.holder_status: str | None = None if holder is None else holder.status


class PlainSnapshot:
    """What :func:`render` reads of a snapshot, from plain records."""

    exists = True
    unreadable: tuple[()] = ()

    def __init__(
        self,
        directory: str,
        stale_after_s: float,
        sessions: list[PlainSession],
        claims: list[PlainClaim],
    ) -> None:
        self.directory = directory
        self.stale_after_s = stale_after_s
        self.sessions = sessions
        self.claims = claims


def plain_snapshot(
    args: argparse.Namespace,
    env: Mapping[str, str],
    clock: Callable[[], datetime] = utc_now,
    probe: ProcessProbe | None = None,
) -> PlainSnapshot | None:
    """The snapshot of the configured heartbeat directory read as plain JSON
    (what ``read_snapshot`` gives, for the table; ``clock`` gives "now", aware
    UTC, ``probe`` proves deaths: tests inject them), or None when the store must
    read it (see the module doc).

    Raises:
        ConfigError: a bad setting.
    """
    from ..domain.process import MemoProbe
    from ..host.probe import probe_process
    from ..host.process_space import observer_here
    from ..session import readers
    from ..store import read_plain_records

    config = reader_config(args, env, flags=_flags(args))
    now = clock()  # the directory store's clock
    found = read_plain_records(config)
    if found is None:
        return None
    location, records, ledgers = found
    observer = observer_here(
        getattr(args, "session_id", None) or env.get("CLAUDE_CODE_SESSION_ID") or None
    )
    thresholds = config.thresholds
    probe = MemoProbe(probe or probe_process)
    views = [PlainSession(record) for record in records]
    for view in views:
        view.judge(readers.classify(view, now, observer, probe, thresholds))
    by_id = {view.session_id: view for view in views}
    if not args.all:
        views = [view for view in views if view.status != "ended"]
    claims = [
        PlainClaim(ledger, now, by_id.get(ledger["holder"]))
        for ledger in ledgers
        if ledger.get("holder") is not None
    ]
    return PlainSnapshot(location, thresholds.stale_after, readers.by_status(views), claims)


def plain_lines(args: argparse.Namespace, colour: bool, env: Mapping[str, str]) -> list[str] | None:
    """The table from :func:`plain_snapshot`, or None when the store must read."""
    snapshot = plain_snapshot(args, env)
    return None if snapshot is None else render(snapshot, colour, args.all)


def render(
    snapshot: Snapshot | PlainSnapshot, colour: bool = False, show_all: bool = False
) -> list[str]:
    """The human form of a snapshot: a summary line, the sessions, the claimed plans."""
    where = "store" if "://" in snapshot.directory else "heartbeat directory"
    lines = [f"{where}: {snapshot.directory} (stale after {snapshot.stale_after_s:g}s)"]
    if not snapshot.exists:
        lines.append("no sessions yet: the directory does not exist")
        return lines
    counts: Counter[str] = Counter(view.status for view in snapshot.sessions)
    order = ["active", "idle", "stale", "dead", "ended"]
    summary = ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    lines.append(
        f"{len(snapshot.sessions)} session{'s' if len(snapshot.sessions) != 1 else ''}"
        + (f" ({summary})" if summary else "")
        + ("" if show_all else "; ended sessions hidden (--all shows them)")
    )
    shorten = short_ids(
        [view.session_id for view in snapshot.sessions]
        + [claim.holder for claim in snapshot.claims]
    )
    if snapshot.sessions:
        rows: list[list[str]] = []
        styles: list[list[str | None]] = []
        for view in snapshot.sessions:
            me = " (you)" if view.relationship == "self" else ""
            age = view.heartbeat_age_s
            rows.append(
                [
                    shorten(view.session_id) + me,
                    view.plan_id or "-",
                    view.branch or "-",
                    os.path.basename(view.worktree) if view.worktree else "-",
                    view.role or "-",
                    view.status,
                    view.health or "-",
                    "never" if age is None else f"{format_duration(age)} ago",
                    _stale_in(view),
                    view.last_activity or "-",
                ]
            )
            styles.append(
                [None, None, None, None, None, view.status, view.health, None, None, None]
            )
        lines.append("")
        lines.extend(
            table(
                [
                    "SESSION",
                    "PLAN",
                    "BRANCH",
                    "WORKTREE",
                    "ROLE",
                    "STATUS",
                    "HEALTH",
                    "HEARTBEAT",
                    "STALE IN",
                    "LAST ACTIVITY",
                ],
                rows,
                styles,
                colour,
            )
        )
    lines.append("")
    if snapshot.claims:
        lines.extend(
            table(
                ["PLAN", "HOLDER", "TOKEN", "SINCE", "HOLDER STATUS"],
                [
                    [
                        claim.plan_id,
                        shorten(claim.holder),
                        str(claim.fencing_token),
                        "-"
                        if claim.held_for_s is None
                        else f"{format_duration(claim.held_for_s)} ago",
                        (claim.holder_status or "record gone")
                        + (
                            f" (took over: {claim.takeover_reason})"
                            if claim.acquired_by == "takeover"
                            else ""
                        ),
                    ]
                    for claim in snapshot.claims
                ],
                [[None, None, None, None, claim.holder_status] for claim in snapshot.claims],
                colour,
            )
        )
    else:
        lines.append("no plan is claimed")
    for item in snapshot.unreadable:
        lines.append(f"unreadable: {item.file}: {item.reason}")
    return lines


def _stale_in(view: Any) -> str:
    """Time to stale, where it means something: for a running session not stale yet."""
    if view.seconds_until_stale is None or view.status == "stale":
        return "-"
    return f"{view.seconds_until_stale:.0f}s"


__all__ = ["PlainSnapshot", "given_args", "main", "plain_snapshot", "render", "run"]
