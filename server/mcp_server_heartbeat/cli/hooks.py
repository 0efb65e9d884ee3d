"""Claude Code hooks: ``mcp-server-heartbeat hook session-start|session-end``.

Claude Code runs a hook command with the event's JSON on stdin
(``session_id``, ``cwd``, ``hook_event_name``, ``transcript_path``, and
``source`` = startup | resume | clear | compact for SessionStart, ``reason`` =
clear | logout | prompt_input_exit | other | ... for SessionEnd).

* **session-start** makes sure the session's record exists (the MCP server
  adopts it when it connects) and prints the hook's JSON output,
  ``{"hookSpecificOutput": {"hookEventName": "SessionStart",
  "additionalContext": "..."}}``: this session's id, the project (type,
  package manager, framework, git branch, remote, root), the active plan,
  the suggested plan, the other live sessions and their plans, and — on
  ``compact`` — a reminder to re-confirm what the agent was waiting for.
  When Claude Code sets ``CLAUDE_ENV_FILE`` it also appends
  ``export HEARTBEAT_SESSION_ID=<id>`` there (the live server's id after
  ``/clear``), so the fenced-commit git hooks know the agent's session
  (:func:`export_session`).
* **session-end** marks the record ended with the hook's reason and releases
  its claim, with the service's own code (:func:`~.ending.end_session_record`)
  under the store's lock — but only when no server process still owns the
  record: on ``/clear`` Claude Code ends the conversation's session id while
  the same MCP server keeps running under that id, and a live server ends its
  record itself when the client disconnects. It prints nothing.

Who the client is: the hook's nearest ancestor that is not a shell (Claude
Code runs hooks through ``sh -c``). A record the start hook writes carries
that process as ``pid`` and ``client_pid`` until the server adopts it, so a
crashed client still leaves proof of death behind.

Both hooks finish well inside a second (no ``mcp`` import, no subprocess, no
network; lock waits of :data:`HOOK_LOCK_TIMEOUT_S`; a watchdog at
:data:`HOOK_DEADLINE_S`), print nothing on stdout but the hook's JSON, and
never fail the user's session: every error goes to stderr and the exit code
is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, ValidationError

from ..domain.clock import Clock, boottime_now, utc_now
from ..domain.errors import InvalidInputError
from ..domain.ids import SessionId
from ..domain.liveness import (
    may_adopt,
    process_alive,
    same_process_space,
)
from ..domain.models import Event, ProjectContext, SessionRecord
from ..domain.validation import describe_validation_error, id_refused, validate_label
from ..host.config import Config, Flags, resolve_config
from ..host.identity import observer_here, read_boot_id, read_pid_namespace, read_time_namespace
from ..host.plans import list_plans, suggest_plan
from ..host.probe import ProcessProbe, probe_process, process_start_ticks, process_start_time
from ..host.project import detect_project
from ..session.handover import end_session_record
from ..session.readers import conversation_server, sessions_with_liveness, working_elsewhere
from ..session.records import Opener, open_record
from ..store import Transaction, open_store
from .hook_context import StartReport, format_start_context
from .light_hook import never_fail

PROG = "mcp-server-heartbeat hook"
HOOK_LOCK_TIMEOUT_S = 0.5
"""Seconds a hook waits for the heartbeat directory's lock."""
HOOK_DEADLINE_S = 3.0
"""A hook that is still running after this many seconds gives up (exit 0)."""
MAX_PAYLOAD_BYTES = 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte-order mark at the start of a payload is skipped (RFC 8259 allows
parsers to ignore it; pydantic's JSON parser does not)."""
SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh", "busybox", "env"}
)
"""Process names skipped when looking for the hook's client (Claude Code)."""

START_SOURCES = ("startup", "resume", "clear", "compact")


class HookInput(BaseModel):
    """The part of Claude Code's hook JSON the hooks use; other keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    session_id: SessionId
    cwd: str | None = None
    hook_event_name: str | None = None
    source: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Lineage:
    """The hook's ancestors on this host: their pids, and the client among them."""

    pids: frozenset[int]
    client_pid: int | None

    @classmethod
    def of_this_process(cls) -> Lineage:
        """Walk up from this process's parent; the client is the first non-shell."""
        pids: set[int] = set()
        client: int | None = None
        try:
            for parent in psutil.Process().parents():
                pids.add(parent.pid)
                if client is None and parent.pid > 1 and _name(parent) not in SHELLS:
                    client = parent.pid
        except (psutil.Error, OSError):
            pass
        return cls(frozenset(pids), client)


def _name(process: psutil.Process) -> str:
    try:
        return os.path.basename(process.name())
    except (psutil.Error, OSError):
        return ""


# -- session-start -------------------------------------------------------------------


def session_start(
    payload: HookInput,
    config: Config,
    env: Mapping[str, str],
    lineage: Lineage,
    clock: Clock = utc_now,
    probe: ProcessProbe = probe_process,
) -> StartReport:
    """Make sure the session's record exists, then describe the session's surroundings.

    The record is written (inside the store's lock) only when it is missing or
    ended: a record the MCP server keeps is left alone. On ``/clear`` Claude
    Code gives the conversation a new id while the MCP server keeps its
    original one; when a live server record of the same client is found, no
    new record is written and that record is the one reported as this
    conversation's.

    Raises:
        InvalidInputError: the payload's session id is not a valid id.
        StoreError, StoreBusyError: the directory could not be prepared or locked.
    """
    session_id = payload.session_id
    source = payload.source or "startup"
    host = socket.gethostname()
    root = Path(config.root.value)
    cwd = _payload_cwd(payload)
    project = detect_project(root, cwd)
    store = open_store(
        config, clock=None if clock is utc_now else clock, lock_timeout=HOOK_LOCK_TIMEOUT_S
    )
    store.prepare()
    thresholds = config.thresholds
    here = observer_here(session_id, host, lineage.client_pid)
    with store.transaction() as tx:
        records, _unreadable = store.list_sessions()
        now = tx.now()
        by_id = {record.session_id: record for record in records}
        own = by_id.get(session_id)
        server = None
        # The server's rule: a live record of another process is left alone.
        opened = open_record(
            own,
            _opener(session_id, payload, project, env, lineage, host),
            now,
            lambda old: may_adopt(old, here, probe),
            boottime=boottime_now() if clock is utc_now else None,
            keep_claim=True,
        )
        if opened.record is not None:
            server = _conversation_server(records, session_id, lineage, host, probe)
        if opened.record is not None and server is None:
            reopened = opened.adopted
            own = opened.record
            if source == "clear" and own.previous_session is None:
                own = own.model_copy(
                    update={"previous_session": _previous(records, session_id, lineage, host)}
                )
            tx.write_session(own)
            _log_opened(tx, own, reopened, source, now)
            by_id[session_id] = own
    observer = observer_here(
        server.session_id if server is not None else session_id,
        host,
        lineage.client_pid,
        own.previous_session if own is not None else None,
    )
    views = sessions_with_liveness(
        by_id.values(), now, observer, probe, thresholds, include_ended=True
    )
    own_view = next((v for v in views if v.session_id == session_id), None)
    server_view = next(
        (v for v in views if server is not None and v.session_id == server.session_id), None
    )
    others = working_elsewhere(views, session_id)
    others.sort(key=lambda view: (view.plan_id is None, view.started_at or now, view.session_id))
    hint = suggest_plan(project.branch, list_plans(Path(config.plans_dir.value)))
    return StartReport(
        session_id=session_id,
        source=source,
        server_session=server_view,
        own=own_view,
        others=others,
        project=project,
        suggested=hint,
        plans_dir=str(config.plans_dir.value),
    )


def _payload_cwd(payload: HookInput) -> Path:
    if payload.cwd and os.path.isabs(payload.cwd) and os.path.isdir(payload.cwd):
        return Path(payload.cwd)
    return Path.cwd()


def _alive_here(record: SessionRecord, host: str, probe: ProcessProbe) -> bool:
    """True when ``record``'s process runs in this hook's process space (host,
    boot, PID namespace) and is not proven dead: the rule of proof of death."""
    here = observer_here(None, host)
    return process_alive(record, here, probe) is True


def _conversation_server(
    records: Sequence[SessionRecord],
    session_id: str,
    lineage: Lineage,
    host: str,
    probe: ProcessProbe,
) -> SessionRecord | None:
    """The live record of another id whose server this hook's client started (the
    ``/clear`` case): :func:`~.readers.conversation_server`, alive by proof of death."""
    return conversation_server(
        records, lineage.pids, host, lambda r: _alive_here(r, host, probe), exclude=session_id
    )


def _previous(
    records: Sequence[SessionRecord], session_id: str, lineage: Lineage, host: str
) -> str | None:
    """The newest other record of the same client: the conversation before ``/clear``."""
    same_client = [
        record
        for record in records
        if record.session_id != session_id
        and record.host == host
        and record.client_pid is not None
        and record.client_pid in lineage.pids
    ]
    if not same_client:
        return None
    return max(same_client, key=lambda r: (r.started_at is not None, r.started_at)).session_id


def _log_opened(
    tx: Transaction, record: SessionRecord, reopened: bool, source: str, now: datetime
) -> None:
    """Append the event for a record the start hook just wrote (in the same transaction).

    ``session_started`` for a new record, ``session_adopted`` for an ended one
    reopened (resume), with ``reason`` naming the hook and its ``source``, as
    the server does for its own records: every change appends its event. A log
    that cannot be written is reported on stderr by the store; the record stands.
    """
    tx.append_event(
        Event(
            at=now,
            event="session_adopted" if reopened else "session_started",
            session_id=record.session_id,
            reason=f"session-start hook ({source})",
            host=record.host,
            pid=record.pid,
        )
    )


def _opener(
    session_id: str,
    payload: HookInput,
    project: ProjectContext,
    env: Mapping[str, str],
    lineage: Lineage,
    host: str,
) -> Opener:
    """The start hook as the opener of a record (:func:`~.records.open_record`):
    for a session no server has written yet, or one it may adopt by the server's
    rule (:func:`~.liveness.may_adopt`: ended, proven dead, or this client's
    own). The record is owned by the client process until the server adopts
    it; a claim the old record shows is kept for the server to confirm
    against the ledger (``keep_claim``)."""
    client = lineage.client_pid
    return Opener(
        session_id=session_id,
        entrypoint=env.get("CLAUDE_CODE_ENTRYPOINT") or None,
        agent_version=env.get("AI_AGENT") or None,
        branch=project.branch,
        cwd=str(_payload_cwd(payload)),
        worktree=project.git_root,
        host=host,
        pid=client,
        pid_started_at=process_start_time(client) if client is not None else None,
        pid_start_ticks=process_start_ticks(client) if client is not None else None,
        client_pid=client,
        boot_id=read_boot_id(),
        pid_namespace=read_pid_namespace(),
        time_namespace=read_time_namespace(),
    )


# -- session-end ---------------------------------------------------------------------


def session_end(
    payload: HookInput,
    config: Config,
    lineage: Lineage,
    clock: Clock = utc_now,
    probe: ProcessProbe = probe_process,
) -> SessionRecord | None:
    """End the session's record unless a server process still owns it.

    The record is ended (claim released in the ledger, ``ended_at`` and
    ``end_reason`` = the hook's reason) when it is on this host and its
    ``pid`` is missing, is this hook's own client (a record the start hook
    wrote), or is proven dead. A live server is left alone: it ends its
    record itself on disconnect, and on ``/clear`` it keeps serving.

    Returns:
        The ended record, or None when nothing was changed.

    Raises:
        InvalidInputError: the payload's session id is not a valid id.
        StoreError, StoreBusyError: nothing was changed.
    """
    session_id = payload.session_id
    try:
        reason = validate_label(payload.reason or "other", "reason")
    except InvalidInputError:
        reason = "other"
    store = open_store(
        config, clock=None if clock is utc_now else clock, lock_timeout=HOOK_LOCK_TIMEOUT_S
    )
    if not store.exists():
        return None
    host = socket.gethostname()
    here = observer_here(session_id, host, lineage.client_pid)

    def may_end(record: SessionRecord) -> bool:
        # A pid is compared or probed only in this hook's own process space (liveness).
        if record.host != host:
            return False
        if record.pid is None:
            return True
        if record.pid in lineage.pids and same_process_space(record, here):
            return True
        return process_alive(record, here, probe) is False

    return end_session_record(
        store, session_id, reason, may_end, clock=clock, probe=probe, lock_timeout=None
    )


# -- command line --------------------------------------------------------------------


def run_session_start(args: argparse.Namespace) -> int:
    """``hook session-start``: print the SessionStart hook JSON; exit 0 whatever happens."""
    with never_fail("session-start", HOOK_DEADLINE_S):
        payload = _read_payload()
        config = _config(args, payload)
        if not config.enabled.value:
            return 0
        report = session_start(payload, config, os.environ, Lineage.of_this_process())
        export_session(os.environ, report)
        output = {
            "hookSpecificOutput": {
                "hookEventName": "SessionStart",
                "additionalContext": format_start_context(report),
            }
        }
        sys.stdout.write(json.dumps(output, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


def run_session_end(args: argparse.Namespace) -> int:
    """``hook session-end``: end the record if no server owns it; prints nothing; exit 0."""
    with never_fail("session-end", HOOK_DEADLINE_S):
        payload = _read_payload()
        config = _config(args, payload)
        if config.enabled.value:
            session_end(payload, config, Lineage.of_this_process())
    return 0


ENV_FILE = "CLAUDE_ENV_FILE"
"""Claude Code names a shell file in this variable for SessionStart hooks; it
sources the file before each Bash command it runs."""


def export_session(env: Mapping[str, str], report: StartReport) -> str | None:
    """Append ``export HEARTBEAT_SESSION_ID=<id>`` to the file named by
    ``CLAUDE_ENV_FILE`` (when set), so commands the agent runs (``git commit``:
    the fenced-commit hooks) know their session: the live server's id when this
    conversation's server runs under another id (``/clear``), else the
    conversation's. Returns the id exported, or None when the variable is unset
    or the file cannot be written (said on stderr: the start context is printed
    all the same; the git hooks then find the session by its client process).
    """
    import shlex

    from ..session.committer import SESSION_ENV

    target = env.get(ENV_FILE)
    if not target:
        return None
    server = report.server_session
    session_id = server.session_id if server is not None else report.session_id
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"export {SESSION_ENV}={shlex.quote(session_id)}\n")
    except OSError as exc:
        print(f"{PROG} session-start: could not write {ENV_FILE} ({exc})", file=sys.stderr)
        return None
    return session_id


def _read_payload() -> HookInput:
    """Claude Code's hook JSON from stdin. Raises InvalidInputError."""
    if sys.stdin is None or sys.stdin.isatty():
        raise InvalidInputError("expects Claude Code's hook JSON on stdin")
    raw = sys.stdin.buffer.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(f"hook input larger than {MAX_PAYLOAD_BYTES} bytes")
    raw = raw.removeprefix(UTF8_BOM)  # some shells and editors (Windows ones) write one
    try:
        return HookInput.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["loc"] == ("session_id",) and first["type"] != "missing":
            raise id_refused(first["input"], "session_id") from exc
        raise InvalidInputError(
            f"hook input is not Claude Code's hook JSON ({describe_validation_error(exc, 'input')})"
        ) from exc


def _config(args: argparse.Namespace, payload: HookInput) -> Config:
    """Resolve the configuration like the server, from the payload's ``cwd``
    (the repository is found from its files: no ``git`` subprocess)."""
    flags = Flags(
        root=getattr(args, "root", None),
        dir=getattr(args, "dir", None),
        scope=getattr(args, "scope", None),
        interval=getattr(args, "interval", None),
        stale_after=getattr(args, "stale_after", None),
        idle_after=getattr(args, "idle_after", None),
        session_id=None,
    )
    return resolve_config(flags, os.environ, _payload_cwd(payload))


__all__ = [
    "HOOK_DEADLINE_S",
    "HOOK_LOCK_TIMEOUT_S",
    "HookInput",
    "Lineage",
    "StartReport",
    "export_session",
    "format_start_context",
    "run_session_end",
    "run_session_start",
    "session_end",
    "session_start",
]
