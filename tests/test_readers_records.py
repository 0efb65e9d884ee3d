"""One reader of sessions with liveness, one way to open or adopt a record.

* Every place that shows sessions (the ``list_sessions`` tool, ``status``'s
  snapshot, the SessionStart hook, the status line) classifies them through
  :func:`readers.classify`, so they cannot drift apart.
* :func:`records.open_record` is the one rule for a fresh record, an adopted
  one, or the decision to continue under a new id; the server and the start
  hook both write what it returns.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import HOST, T0, FakeClock, FakeProbe, ServiceFactory
from mcp_server_heartbeat.cli import hooks, statusline
from mcp_server_heartbeat.domain.liveness import Liveness, Thresholds, view_of
from mcp_server_heartbeat.domain.models import SessionRecord, SessionView, Tags
from mcp_server_heartbeat.host.config import Flags, resolve_config
from mcp_server_heartbeat.host.identity import observer_here, read_boot_id, read_pid_namespace
from mcp_server_heartbeat.session import readers
from mcp_server_heartbeat.session.observe import read_snapshot
from mcp_server_heartbeat.session.records import Opener, open_record
from mcp_server_heartbeat.store.directory.light import scan
from mcp_server_heartbeat.store.directory.store import DirectoryStore


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count, per session id, the classifications made through the one reader."""
    seen: Counter[str] = Counter()
    real = readers.classify

    def classify(record: Any, *args: Any) -> Any:
        seen[record.session_id] += 1
        return real(record, *args)

    monkeypatch.setattr(readers, "classify", classify)
    return seen


def test_every_reader_classifies_through_the_one_reader(
    tmp_path: Path, clock: FakeClock, probe: FakeProbe, spy: Counter[str]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    config = resolve_config(Flags(root=str(root)), {}, root)
    store = DirectoryStore(config.dir_path)
    store.prepare()
    for sid, pid in (("live", 101), ("gone", 102)):
        store.write_session(
            SessionRecord(
                session_id=sid,
                host=HOST,
                pid=pid,
                last_heartbeat=T0,
                started_at=T0,
                boot_id=read_boot_id(),
                pid_namespace=read_pid_namespace(),
            )
        )
    probe.dead.add(102)
    observer = observer_here("me", HOST, boottime=None)
    thresholds = Thresholds()

    views = readers.sessions_with_liveness(
        store.list_sessions()[0], T0, observer, probe, thresholds
    )
    assert {(v.session_id, v.status) for v in views} == {("live", "active"), ("gone", "dead")}
    assert spy == Counter({"live": 1, "gone": 1})

    spy.clear()
    snapshot = read_snapshot(store, T0, observer, probe, thresholds)
    assert [v.session_id for v in snapshot.sessions] == ["live", "gone"]
    assert spy == Counter({"live": 1, "gone": 1})

    spy.clear()
    line = statusline.line_for(lambda: scan(config.dir_path), "live", T0, 300.0, 600.0, HOST, probe)
    assert line.endswith("0 others live")  # "gone" is dead
    assert spy["live"] >= 1 and spy["gone"] == 1

    spy.clear()
    report = hooks.session_start(
        hooks.HookInput(session_id="hooked", cwd=str(root)),
        config,
        {},
        hooks.Lineage(frozenset(), None),
        clock=clock,
        probe=probe,
    )
    assert [v.session_id for v in report.others] == ["live"]
    assert {"live", "gone", "hooked"} <= set(spy)


def test_list_sessions_is_the_reader_with_filters(
    make_service: ServiceFactory, clock: FakeClock, probe: FakeProbe, spy: Counter[str]
) -> None:
    me = make_service("me", pid=201)
    other = make_service("other", pid=202)
    assert other.claim("p").outcome == "claimed"
    ended = make_service("ended", pid=203)
    ended.heartbeat()  # an agent call: its record is kept when it ends
    ended.end("disconnect")
    spy.clear()
    assert {v.session_id for v in me.list_sessions().sessions} == {"me", "other"}
    assert set(spy) == {"me", "other"}  # an ended record left out is not even classified
    assert [v.session_id for v in me.list_sessions(plan_id="p").sessions] == ["other"]
    assert [v.session_id for v in me.list_sessions(status="ended").sessions] == ["ended"]
    with pytest.raises(Exception, match="status 'gone' is not accepted"):
        me.list_sessions(status="gone")


def test_is_live_agrees_with_classify_without_probing_the_stale(probe: FakeProbe) -> None:
    observer = observer_here("me", HOST, boottime=None)
    probed: list[int] = []

    def counting(pid: int, started: Any) -> Any:
        probed.append(pid)
        return probe(pid, started)

    records = [
        SessionRecord(session_id="fresh", host=HOST, pid=1, last_heartbeat=T0),
        SessionRecord(session_id="idle", host=HOST, pid=2, last_heartbeat=T0,
                      last_call_at=T0 - timedelta(hours=1)),
        SessionRecord(session_id="stale", host=HOST, pid=3,
                      last_heartbeat=T0 - timedelta(hours=1)),
        SessionRecord(session_id="ended", host=HOST, pid=4, last_heartbeat=T0, ended_at=T0),
    ]  # fmt: skip
    thresholds = Thresholds()
    live = [r.session_id for r in records if readers.is_live(r, T0, observer, counting, thresholds)]
    assert live == ["fresh", "idle"]
    assert 3 not in probed and 4 not in probed
    assert [
        r.session_id
        for r in records
        if readers.classify(r, T0, observer, probe, thresholds).status in readers.LIVE
    ] == live


def _view_fields(record: SessionRecord, liveness: Liveness) -> dict[str, Any]:
    fields = {name: getattr(record, name, None) for name in SessionView.model_fields}
    fields.update(liveness._asdict())
    return fields


@pytest.mark.parametrize("status", ["active", "idle", "stale", "dead", "ended"])
@pytest.mark.parametrize(
    "record",
    [
        SessionRecord(session_id="bare"),
        SessionRecord(
            session_id="full", plan_id="p", branch="b", cwd="/w", worktree="/w", role="executor",
            entrypoint="cli", agent_version="v", started_at=T0 - timedelta(hours=1),
            last_heartbeat=T0, last_activity="s", last_call_at=T0, previous_session="o",
            fencing_token=3, claimed_at=T0, host=HOST, pid=5, tags=Tags(kind="k", topics=["t"]),
            ended_at=T0, end_reason="r",
        ),
        # The own record in memory: dates of the clock (microseconds), another zone.
        SessionRecord(session_id="other tool", tags={"kind": "x", "other": 1}),
        SessionRecord(session_id="own", tags={"kind": "x"}).model_copy(
            update={
                "tags": {"kind": "x"},
                "last_call_at": T0.replace(microsecond=123456),
                "started_at": T0.astimezone(timezone(timedelta(hours=2))),
                "last_heartbeat": T0.replace(tzinfo=None),
            }
        ),
    ],
)  # fmt: skip
def test_a_view_built_without_validation_equals_the_validated_one(
    record: SessionRecord, status: str
) -> None:
    """``view_of`` builds views without a second validation (a listing builds one
    per session); the result is the view validation builds, dates and "over"
    rule (no health, no time to stale) included, and it dumps alike."""
    liveness = Liveness(
        status=status,  # type: ignore[arg-type]
        health="warning",
        heartbeat_age_s=61.5,
        seconds_until_stale=238.5,
        clock_skew_s=None,
        process_alive=status != "dead",
        relationship="other_active",
    )
    built = view_of(record, liveness)
    validated = SessionView(**_view_fields(record, liveness))
    assert built == validated
    assert built.model_dump(mode="json") == validated.model_dump(mode="json")
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set


def test_the_view_dates_normalised_without_validation_are_all_of_them() -> None:
    """``of_checked`` normalises the fields typed ``ReplyDatetime``: a date field
    added to the view must be added to its list."""
    from mcp_server_heartbeat.domain import models

    dated = {
        name
        for name, field in SessionView.model_fields.items()
        if "_as_utc_ms" in repr(field.annotation)
    }
    assert dated == set(models._VIEW_DATES)


# -- opening or adopting a record ----------------------------------------------


def opener(**changes: Any) -> Opener:
    fields: dict[str, Any] = {
        "session_id": "s",
        "entrypoint": "cli",
        "agent_version": None,
        "branch": "main",
        "cwd": "/w",
        "worktree": "/w",
        "host": HOST,
        "pid": 300,
        "pid_started_at": T0,
        "client_pid": 299,
        "boot_id": "b",
        "pid_namespace": "n",
        "time_namespace": "t",
    }
    fields.update(changes)
    return Opener(**fields)


OLD = SessionRecord(
    session_id="s",
    entrypoint="old-entry",
    agent_version="claude/1",
    started_at=T0 - timedelta(hours=2),
    last_heartbeat=T0 - timedelta(hours=1),
    role="reviewer",
    tags=Tags(kind="bugfix", topics=["login"]),
    previous_session="before",
    last_activity="step3",
    plan_id="p",
    fencing_token=4,
    claimed_at=T0 - timedelta(hours=2),
    host=HOST,
    pid=100,
    ended_at=T0 - timedelta(hours=1),
    end_reason="disconnect",
)


def test_a_fresh_record() -> None:
    opening = open_record(None, opener(heartbeat_interval_s=30.0), T0, lambda _: False, 12.5)
    record = opening.record
    assert record is not None and not opening.adopted and not opening.continue_under_new_id
    assert (record.started_at, record.last_heartbeat, record.last_call_at) == (T0, T0, T0)
    assert (record.pid, record.client_pid, record.heartbeat_interval_s) == (300, 299, 30.0)
    assert record.last_heartbeat_boottime == 12.5
    assert record.adopted_at is None and record.previous_session is None


def test_an_adopted_record_keeps_what_the_session_did() -> None:
    opening = open_record(OLD, opener(), T0, lambda _: True)
    record = opening.record
    assert record is not None and opening.adopted
    assert record.started_at == OLD.started_at
    assert (record.role, record.tags, record.last_activity) == (
        OLD.role,
        OLD.tags,
        OLD.last_activity,
    )
    assert (record.previous_session, record.entrypoint, record.agent_version) == (
        "before",
        "cli",
        "claude/1",
    )
    assert (record.adopted_at, record.ended_at, record.end_reason) == (T0, None, None)
    assert (record.pid, record.host) == (300, HOST)
    assert record.plan_id is None  # the server confirms a claim against the ledger
    kept = open_record(OLD, opener(previous_session="orig"), T0, lambda _: True, keep_claim=True)
    assert kept.record is not None
    assert (kept.record.plan_id, kept.record.fencing_token) == ("p", 4)
    assert kept.record.previous_session == "orig"


def test_a_record_that_may_not_be_adopted_means_a_new_id() -> None:
    asked: list[str] = []
    opening = open_record(OLD, opener(), T0, lambda old: asked.append(old.session_id) or False)
    assert opening.record is None and opening.continue_under_new_id
    assert asked == ["s"]


def test_server_and_start_hook_open_a_record_alike(
    tmp_path: Path, make_service: ServiceFactory, clock: FakeClock, probe: FakeProbe
) -> None:
    """The hook reopens an ended record the way the server adopts one: same kept
    fields, same adoption time (one implementation)."""
    root = tmp_path / "project"
    root.mkdir()
    config = resolve_config(Flags(root=str(root)), {}, root)
    store = DirectoryStore(config.dir_path)
    store.prepare()
    for sid in ("by-hook", "by-server"):
        store.write_session(OLD.model_copy(update={"session_id": sid, "plan_id": None}))
    clock.advance(60)
    hooks.session_start(
        hooks.HookInput(session_id="by-hook", cwd=str(root)),
        config,
        {},
        hooks.Lineage(frozenset(), None),
        clock=clock,
        probe=probe,
    )
    from conftest import make_identity
    from mcp_server_heartbeat.session.service import SessionService

    SessionService(
        store, make_identity("by-server", 400), Thresholds(), 30.0, clock=clock, probe=probe
    ).start()
    hook_record = store.read_session("by-hook")
    server_record = store.read_session("by-server")
    assert hook_record is not None and server_record is not None
    keys = ("started_at", "role", "tags", "previous_session", "last_activity", "adopted_at")
    assert [getattr(hook_record, k) for k in keys] == [getattr(server_record, k) for k in keys]
    assert hook_record.adopted_at == clock.now and hook_record.ended_at is None


def test_continuations_follow_the_naming_rule_not_every_previous_session() -> None:
    from mcp_server_heartbeat.domain.validation import ID_MAX_CHARS
    from mcp_server_heartbeat.session.readers import continuation_id, continuation_ids

    long_id = "a" * ID_MAX_CHARS
    second = continuation_id(long_id, 2)
    assert len(second) == ID_MAX_CHARS and second.endswith("-2")
    pairs = [
        ("conv", None),
        ("conv-2", "conv"),  # a server continuing a busy id
        ("conv-3", "conv"),
        ("other", "conv"),  # took conv's plan over: previous_session, not a continuation
        ("conv-x", "conv"),
        (second, long_id),  # shortened to stay a valid id
        ("conv-2-2", "conv-2"),  # a continuation of a continuation
    ]
    assert continuation_ids(pairs, "conv") == {"conv", "conv-2", "conv-3", "conv-2-2"}
    assert continuation_ids(pairs, long_id) == {long_id, second}
    assert continuation_ids(pairs, "nobody") == {"nobody"}
