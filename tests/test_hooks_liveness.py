"""The hooks follow the server's rules for whose record is whose.

SessionStart (re)opens the conversation's record only when the server's rule
(``liveness.may_adopt``) allows: a record that ended, is proven dead, or is
this client's own; a dead holder's claim is kept for the resumed session.
SessionEnd ends a record only when its pid is provably this hook's client or
dead in the hook's own PID namespace: a pid of another namespace proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import test_hooks
from mcp_server_heartbeat.session.service import SessionService
from test_hooks import SID, dead_pid, hold, payload, record, run_hook, store_of

project = test_hooks.project  # fixtures shared with test_hooks
spawn = test_hooks.spawn


def test_resume_reopens_a_dead_servers_record_and_keeps_its_claim_for_the_client(
    project: Path,
) -> None:
    store = store_of(project)
    pid, started = dead_pid()
    hold(store, record(SID, pid, pid).model_copy(update={"pid_started_at": started}), "043", 4)
    done = run_hook("session-start", payload("session_start_resume", project), project)
    assert done.returncode == 0, done.stderr
    reopened = store.read_session(SID)
    assert reopened is not None
    assert (reopened.pid, reopened.client_pid) == (os.getpid(), os.getpid())
    assert (reopened.plan_id, reopened.fencing_token) == ("043", 4)
    assert reopened.adopted_at is not None and reopened.boot_id is not None
    # The conversation lives again: its plan is no longer free to take by proof of death.
    claimant = SessionService.for_record(store, record("claimant", os.getpid(), 1))
    result = claimant.claim("043")
    assert result.outcome == "held_by_other"


def test_a_live_record_of_another_client_is_left_alone(project: Path, spawn: Any) -> None:
    store = store_of(project)
    other = spawn()
    hold(store, record(SID, other.pid, other.pid), "043", 2)
    path = store.directory / f"{SID}.json"
    before = path.read_bytes()
    done = run_hook("session-start", payload("session_start_resume", project), project)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == before


def test_session_end_does_not_end_a_record_of_another_pid_namespace(project: Path) -> None:
    """Its pid, seen from here, is the hook's own client or a dead process: neither
    says anything about the process in the other namespace."""
    store = store_of(project)
    pid, started = dead_pid()
    for session_id, rec_pid in (("in-lineage", os.getpid()), ("dead-here", pid)):
        store.write_session(
            record(session_id, rec_pid, rec_pid, pid_namespace="pid:[4026599999]").model_copy(
                update={"pid_started_at": started if rec_pid == pid else None}
            )
        )
        data = payload("session_end_other", project) | {"session_id": session_id}
        done = run_hook("session-end", data, project)
        assert done.returncode == 0, done.stderr
        kept = store.read_session(session_id)
        assert kept is not None and kept.ended_at is None, session_id
    store.write_session(record("here", pid, pid).model_copy(update={"pid_started_at": started}))
    data = payload("session_end_other", project) | {"session_id": "here"}
    run_hook("session-end", data, project)
    ended = store.read_session("here")
    assert ended is not None and ended.ended_at is not None  # the same rule still ends this
