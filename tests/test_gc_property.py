"""``gc`` never deletes a live record (issue 4): a property over random
heartbeat directories, with an injected clock and process probe."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HOST, T0, FakeProbe
from mcp_server_heartbeat.domain.liveness import Thresholds, assess
from mcp_server_heartbeat.domain.models import ClaimRecord, SessionRecord
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.session.observe import collect_garbage
from mcp_server_heartbeat.store.directory.events import Event
from mcp_server_heartbeat.store.directory.store import DirectoryStore

THRESHOLDS = Thresholds(stale_after=300.0, idle_after=600.0)
NOW = T0 + timedelta(days=30)

session = st.fixed_dictionaries(
    {
        "age_s": st.floats(min_value=0, max_value=20 * 86400, allow_nan=False),
        "call_age_s": st.floats(min_value=0, max_value=3000, allow_nan=False),
        "ended": st.booleans(),
        "pid_dead": st.booleans(),
        "other_host": st.booleans(),
        "holds_claim": st.booleans(),
        "no_heartbeat": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(session, min_size=0, max_size=12),
    older_than_s=st.sampled_from([0.0, 60.0, 3600.0, 86400.0, 7 * 86400.0]),
    dry_run=st.booleans(),
)
def test_gc_removes_only_old_ended_or_dead_non_holders(
    sessions: list[dict[str, object]], older_than_s: float, dry_run: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "sessions"
        store = DirectoryStore(directory)
        store.prepare()
        probe = FakeProbe()
        records = []
        for i, spec in enumerate(sessions):
            beat = NOW - timedelta(seconds=float(spec["age_s"]))  # type: ignore[arg-type]
            pid = 1000 + i
            if spec["pid_dead"]:
                probe.dead.add(pid)
            record = SessionRecord(
                session_id=f"s{i}",
                started_at=beat - timedelta(hours=1),
                last_heartbeat=None if spec["no_heartbeat"] else beat,
                last_call_at=beat - timedelta(seconds=float(spec["call_age_s"])),  # type: ignore[arg-type]
                host="elsewhere" if spec["other_host"] else HOST,
                pid=pid,
                ended_at=beat if spec["ended"] else None,
            )
            if spec["holds_claim"]:
                plan = f"p{i}"
                record = record.model_copy(update={"plan_id": plan, "fencing_token": 3})
                store.write_claim(ClaimRecord(plan_id=plan, fencing_token=3, holder=f"s{i}"))
            store.write_session(record)
            store.append_event(Event(at=beat, event="session_started", session_id=f"s{i}"))
            records.append(record)
        ledgers_before = {p.name: p.read_bytes() for p in store.claims_dir.iterdir()}
        observer = observer_here(None, HOST)

        report = collect_garbage(
            store, NOW, older_than_s, observer, probe, THRESHOLDS, dry_run=dry_run
        )

        cutoff = NOW - timedelta(seconds=older_than_s)
        removed = {item.session_id for item in report.removed}
        left = {r.session_id for r in store.list_sessions()[0]}
        for record in records:
            status = assess(record, NOW, observer, probe, THRESHOLDS).status
            last_seen = record.ended_at or record.last_heartbeat or record.started_at
            removable = (
                status in ("ended", "dead")
                and record.plan_id is None
                and last_seen is not None
                and last_seen < cutoff
            )
            assert (record.session_id in removed) == removable, (record, status)
            if status in ("active", "idle", "stale"):
                assert record.session_id in left  # never a live record
            assert (record.session_id in left) == (dry_run or not removable)
        assert {p.name: p.read_bytes() for p in store.claims_dir.iterdir()} == ledgers_before
        assert report.kept + len(removed) == len(records)
        kept_events = store.read_events()
        if not dry_run:
            assert all(event.at >= cutoff for event in kept_events)
