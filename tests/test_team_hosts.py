"""Team mode with several machines on one box: real server processes in three
"hosts" (UTS + PID namespaces, see tests/team_hosts.py) sharing one PostgreSQL
database, checked by an observer that reads the database directly.

Needs root (unshare, nsenter) and ``HEARTBEAT_TEST_DSN``; skips with the
reason elsewhere, fails instead when ``CI=true``. The PostgreSQL restart test
also needs ``pg_ctlcluster`` and runs only with ``CI=true`` or
``HEARTBEAT_TEST_PG_RESTART=1`` (it restarts the machine's cluster).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from namespaces import require_root_and_unshare
from pg_support import drop_schema, random_schema, test_dsn
from stdio_client import wait_until
from team_hosts import Host, HostServer, Observer

STALE_AFTER = 3.0
INTERVAL = 0.5
GRANTED = ("claimed", "taken_over")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def _skip_or_fail(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


class Team:
    """Hosts, servers and an observer on one throwaway schema; all stopped and
    the schema dropped by :meth:`close`."""

    def __init__(self, root: Path) -> None:
        require_root_and_unshare("team hosts (several machines on one box)")
        if shutil.which("nsenter") is None:
            _skip_or_fail("team hosts need util-linux nsenter")
        self.dsn = test_dsn()
        self.root = root
        self.schema = random_schema()
        self.project = "team-" + uuid.uuid4().hex[:8]
        self.hosts: dict[str, Host] = {}
        self.servers: list[HostServer] = []
        self.observer: Observer | None = None

    def host(self, name: str) -> Host:
        self.hosts[name] = Host(name)
        return self.hosts[name]

    def server(self, host: Host, session_id: str, **options: Any) -> HostServer:
        server = HostServer(
            host,
            self.root,
            session_id,
            dsn=self.dsn,
            schema=self.schema,
            project=self.project,
            stale_after=STALE_AFTER,
            interval=INTERVAL,
            **options,
        )
        self.servers.append(server)
        if self.observer is None:  # the first server migrated the schema
            self.observer = Observer(self.dsn, self.schema, self.project)
        return server

    def close(self) -> None:
        if self.observer is not None:
            self.observer.stop()
        for server in self.servers:
            server.stop()
        for host in self.hosts.values():
            host.stop()
        drop_schema(self.dsn, self.schema)


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    made = Team(root)
    try:
        yield made
    finally:
        made.close()


def _takeovers(observer: Observer) -> list[dict[str, Any]]:
    """Every takeover in the claims table, with the previous holder's identity
    (host, PID namespace) and last heartbeat next to the new holder's."""
    rows = observer.query(
        "SELECT e.plan_id, (e.event->>'fencing_token')::bigint, e.event->>'reason', e.session_id,"
        " n.record->>'host', n.record->>'pid_namespace', c.claimed_at,"
        " e.event->>'previous_holder',"
        " o.record->>'host', o.record->>'pid_namespace',"
        " (o.record->>'last_heartbeat')::timestamptz, (e.event->>'force')::boolean"
        " FROM {s}.events e"
        " JOIN {s}.claims c ON c.project = e.project AND c.plan_id = e.plan_id"
        "  AND c.fencing_token = (e.event->>'fencing_token')::bigint"
        " LEFT JOIN {s}.sessions n ON n.project = e.project AND n.session_id = e.session_id"
        " LEFT JOIN {s}.sessions o ON o.project = e.project"
        "  AND o.session_id = e.event->>'previous_holder'"
        " WHERE e.project = %s AND e.kind = 'claim_taken_over' ORDER BY e.id",
        [observer.project],
    )
    keys = (
        "plan",
        "token",
        "reason",
        "holder",
        "host",
        "pid_ns",
        "claimed_at",
        "previous",
        "previous_host",
        "previous_pid_ns",
        "previous_last_heartbeat",
        "force",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _check_takeovers(takeovers: list[dict[str, Any]]) -> None:
    for takeover in takeovers:
        same_machine = (takeover["host"], takeover["pid_ns"]) == (
            takeover["previous_host"],
            takeover["previous_pid_ns"],
        )
        if takeover["reason"] == "proof_of_death":
            assert same_machine, f"proof of death across machines: {takeover}"
        else:
            assert takeover["reason"] == "forced_stale" and takeover["force"], takeover
            age = (takeover["claimed_at"] - takeover["previous_last_heartbeat"]).total_seconds()
            assert age >= STALE_AFTER, f"taken over {age:.2f} s after its last beat: {takeover}"


class Worker:
    """Claim, heartbeat, release loops on one server until stopped (never force)."""

    def __init__(
        self, server: HostServer, plans: list[str], seed: int, *, tolerate: str = ""
    ) -> None:
        """``tolerate``: tool errors containing it are counted (``outcomes["error"]``)
        and the loop goes on (e.g. "unreachable" while the database restarts)."""
        self.server = server
        self.tolerate = tolerate
        self.plans = plans
        self.random = random.Random(seed)
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                claim = self.server.call("claim_plan", plan_id=self.random.choice(self.plans))
                self.outcomes[claim["outcome"]] += 1
                if claim["outcome"] in (*GRANTED, "already_yours"):
                    # already_yours: an earlier loop's heartbeat or release failed
                    # (the database restarting); finish that lease now.
                    beat = self.server.call("heartbeat", activity="racing")
                    if beat["claim_lost"] is None:
                        done = self.server.call(
                            "release", reason="done", fencing_token=claim["fencing_token"]
                        )
                        self.outcomes["release:" + done["outcome"]] += 1
                elif claim["outcome"] == "holding_other":
                    self.server.call("release", reason="switching")
            except AssertionError as exc:
                if self.tolerate and self.tolerate in str(exc):
                    self.outcomes["error"] += 1
                    self.stop_event.wait(0.1)
                    continue
                self.errors.append(repr(exc))
                return
            except Exception as exc:  # the server was killed: this worker ends
                if self.server.server.proc.poll() is None:
                    self.errors.append(repr(exc))
                return
            self.stop_event.wait(self.random.uniform(0.0, 0.05))

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    wait_until(condition, timeout=timeout, what=what)


def test_race_over_three_hosts_with_kill9_of_holders_and_of_a_host(team: Team) -> None:
    """9 servers on 3 hosts race for 2 plans; a holder is killed -9 (its host's
    peers take it by proof of death), then a whole host is killed while holding
    a third plan (the other hosts never take it without force, and with force
    only once it is stale by the database clock)."""
    hosts = [team.host(f"host{n}") for n in (1, 2, 3)]
    servers = [team.server(host, f"s-{host.name}-{k}") for host in hosts for k in (1, 2, 3)]
    observer = team.observer
    assert observer is not None
    race_plans = ["p1", "p2"]
    workers = {s.session_id: Worker(s, race_plans, seed=i) for i, s in enumerate(servers)}
    killed: list[str] = []
    try:
        _wait_for(
            lambda: sum(sum(w.outcomes[o] for o in GRANTED) for w in workers.values()) >= 20,
            timeout=30,
            what="20 grants in the race",
        )

        # 1. kill -9 a holder; a peer on its host takes the plan by proof of death.
        def a_holder_with_peers() -> bool:
            for plan in race_plans:
                live = observer.live_holder(plan)
                if live is not None:
                    victim_id = live[0]
                    victim = next(s for s in servers if s.session_id == victim_id)
                    with victim.lock:  # stop it between calls, holding the plan
                        if observer.live_holder(plan) == live:
                            workers[victim_id].stop_event.set()
                            victim.kill9()
                            killed.append(victim_id)
                            a_holder_with_peers.found = (plan, live, victim)  # type: ignore[attr-defined]
                            return True
            return False

        _wait_for(a_holder_with_peers, timeout=20, what="a live holder to kill")
        plan, (victim_id, victim_token), victim = a_holder_with_peers.found  # type: ignore[attr-defined]
        peers = [s for s in servers if s.host is victim.host and s is not victim]

        def taken_by_a_peer() -> bool:
            live = observer.live_holder(plan)
            return live is not None and live[0] != victim_id

        _wait_for(taken_by_a_peer, timeout=30, what=f"{plan} to leave the killed {victim_id}")
        first = next(
            t for t in _takeovers(observer) if t["plan"] == plan and t["previous"] == victim_id
        )
        assert first["reason"] == "proof_of_death", first
        assert first["holder"] in {p.session_id for p in peers}, first
        assert first["token"] > victim_token

        # 2. a whole host dies while one of its servers holds p3.
        doomed = hosts[2]
        holder = next(s for s in servers if s.host is doomed and s.session_id not in killed)
        workers[holder.session_id].stop()
        holder.call("release")
        granted = holder.call("claim_plan", plan_id="p3")
        assert granted["outcome"] == "claimed", granted
        for s in servers:
            if s.host is doomed and s is not holder and s.session_id not in killed:
                # Free what the doomed host's racers hold: a plan held by a dead server
                # of another host is never taken without force, which racers never use.
                workers[s.session_id].stop()
                s.call("release")
        doomed.kill()
        killed.extend(s.session_id for s in servers if s.host is doomed)
        claimant = next(s for s in servers if s.host is hosts[0] and s.session_id not in killed)
        workers[claimant.session_id].stop()
        claimant.call("release")
        assert claimant.call("claim_plan", plan_id="p3")["outcome"] == "held_by_other"
        forced_early = claimant.call("claim_plan", plan_id="p3", force=True)
        early_age = observer.heartbeat_age(holder.session_id)
        if early_age < STALE_AFTER - 1.0:  # judged well before staleness: refused
            assert forced_early["outcome"] == "held_by_other", (forced_early, early_age)
        _wait_for(
            lambda: observer.heartbeat_age(holder.session_id) > STALE_AFTER + 0.2,
            timeout=STALE_AFTER + 15,
            what="the dead host's holder to go stale",
        )
        stale = claimant.call("claim_plan", plan_id="p3")
        assert stale["outcome"] == "held_by_other", stale  # stale and remote: never without force
        assert stale["holder"]["status"] == "stale", stale
        taken = claimant.call("claim_plan", plan_id="p3", force=True)
        assert taken["outcome"] == "taken_over", taken
        assert taken["takeover_reason"] == "forced_stale", taken
        assert taken["fencing_token"] > granted["fencing_token"]

        # A little more racing among the survivors, then stop.
        grants_now = sum(sum(w.outcomes[o] for o in GRANTED) for w in workers.values())
        _wait_for(
            lambda: (
                sum(sum(w.outcomes[o] for o in GRANTED) for w in workers.values())
                >= grants_now + 10
            ),
            timeout=30,
            what="10 more grants among the survivors",
        )
    finally:
        for worker in workers.values():
            worker.stop()
        observer.stop()

    takeovers = _takeovers(observer)
    _check_takeovers(takeovers)
    assert observer.violations == []
    assert observer.history_checks() == []
    assert observer.samples > 50
    errors = {sid: w.errors for sid, w in workers.items() if w.errors}
    assert errors == {}
    totals: Counter[str] = Counter()
    for worker in workers.values():
        totals.update(worker.outcomes)
    print(
        f"\nrace: {dict(totals)}; kills: server {killed[0]}, host {doomed.name}; "
        f"takeovers: {Counter(t['reason'] for t in takeovers)}; observer samples {observer.samples}"
    )


def _require_restart_opt_in() -> str:
    """The PostgreSQL version whose cluster may be restarted, or skip/fail."""
    if not (_in_ci() or os.environ.get("HEARTBEAT_TEST_PG_RESTART") == "1"):
        pytest.skip(
            "restarting PostgreSQL mid-race restarts the machine's cluster: set "
            "HEARTBEAT_TEST_PG_RESTART=1 (or CI=true) to run it, as root with pg_ctlcluster"
        )
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        _skip_or_fail("the PostgreSQL restart test needs pg_ctlcluster (postgresql-common)")
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        _skip_or_fail("no cluster under /etc/postgresql")
    return versions[0]


def _pg_ready() -> bool:
    return (
        subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False, timeout=10
        ).returncode
        == 0
    )


def _ensure_cluster_running(version: str) -> None:
    if not _pg_ready():
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            timeout=60,
        )
    wait_until(_pg_ready, timeout=60, what="PostgreSQL to accept connections")


def test_postgresql_restart_mid_race_loses_no_claim(team: Team) -> None:
    """Holders on two hosts keep their claims across a PostgreSQL restart; the
    servers (not restarted) answer again within a bounded time."""
    version = _require_restart_opt_in()
    hosts = [team.host("host1"), team.host("host2")]
    servers = [team.server(host, f"r-{host.name}-{k}") for host in hosts for k in (1, 2)]
    observer = team.observer
    assert observer is not None
    holders = {"q1": servers[0], "q2": servers[2]}
    tokens = {}
    for plan, server in holders.items():
        claim = server.call("claim_plan", plan_id=plan)
        assert claim["outcome"] == "claimed", claim
        tokens[plan] = claim["fencing_token"]
    racers = [
        Worker(s, ["q3"], seed=i, tolerate="unreachable")
        for i, s in enumerate((servers[1], servers[3]))
    ]
    try:
        _wait_for(lambda: sum(w.outcomes["claimed"] for w in racers) >= 5, 30, "grants on q3")
        started = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            timeout=60,
        )
        wait_until(_pg_ready, timeout=60, what="PostgreSQL to accept connections again")
        ready = time.monotonic() - started
        recovered: dict[str, float] = {}
        for server in servers:
            if server in holders.values():

                def answers(server: HostServer = server) -> bool:
                    with server.lock:
                        result = server.server.call("heartbeat", activity="after restart")
                    if result.get("isError"):
                        return False
                    assert result["structuredContent"]["claim_lost"] is None, result
                    return True

                wait_until(answers, timeout=30, what=f"{server.session_id} to answer again")
                recovered[server.session_id] = time.monotonic() - started
        grants = sum(w.outcomes["claimed"] for w in racers)

        def more_grants() -> bool:
            assert [w.errors for w in racers] == [[], []], [dict(w.outcomes) for w in racers]
            return sum(w.outcomes["claimed"] for w in racers) >= grants + 5

        _wait_for(more_grants, 30, "grants on q3 after the restart")
    finally:
        for worker in racers:
            worker.stop()
        _ensure_cluster_running(version)
        if observer is not None:
            observer.stop()
    assert [w.errors for w in racers] == [[], []]
    for plan, server in holders.items():
        assert observer.live_holder(plan) == (server.session_id, tokens[plan])
        view = server.call("claim_plan", plan_id=plan)
        assert view["outcome"] == "already_yours" and view["fencing_token"] == tokens[plan]
    assert observer.violations == []
    assert observer.history_checks() == []
    _check_takeovers(_takeovers(observer))
    print(
        f"\nrestart: pg_isready after {ready:.2f} s; servers answered after "
        f"{ {k: round(v, 2) for k, v in recovered.items()} }; observer errors {observer.errors}; "
        f"racers {[dict(w.outcomes) for w in racers]}"
    )


FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def _faketime_env() -> dict[str, str]:
    if not FAKETIME_LIB.exists():
        _skip_or_fail(
            f"the clock-skew test needs libfaketime ({FAKETIME_LIB}): apt-get install -y faketime"
        )
    return {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": "+1h", "FAKETIME_DONT_RESET": "1"}


def test_a_host_an_hour_ahead_judges_exactly_as_the_others(team: Team) -> None:
    """A server whose wall clock is an hour ahead (libfaketime) sees the same
    ages, statuses, claims and takeovers as one on a correct clock: every
    judgment uses the database's clock."""
    skew = _faketime_env()
    probe = subprocess.run(
        ["python3", "-c", "import time; print(time.time())"],
        env={**os.environ, **skew},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    offset = float(probe.stdout) - time.time()
    assert 3500 < offset < 3700, f"libfaketime did not move the clock ({offset:.0f} s)"

    normal_host, skewed_host = team.host("host1"), team.host("host2")
    normal = team.server(normal_host, "on-time")
    ahead = team.server(skewed_host, "hour-ahead", env_extra=skew)
    observer = team.observer
    assert observer is not None

    held = normal.call("claim_plan", plan_id="k1")
    assert held["outcome"] == "claimed"
    mine = ahead.call("claim_plan", plan_id="k2")
    assert mine["outcome"] == "claimed"

    def seen_by(server: HostServer, session_id: str) -> dict[str, Any]:
        sessions = server.call("list_sessions")["sessions"]
        return next(s for s in sessions if s["session_id"] == session_id)

    for viewer, viewed in ((ahead, "on-time"), (normal, "hour-ahead"), (ahead, "hour-ahead")):
        row = seen_by(viewer, viewed)
        assert row["status"] == "active", (viewer.session_id, row)
        assert 0 <= row["heartbeat_age_s"] < STALE_AFTER, (viewer.session_id, row)
    beat = ahead.call("heartbeat", activity="checking")
    assert beat["claim_lost"] is None
    assert beat["session"]["status"] == "active", beat
    assert 0 <= beat["session"]["heartbeat_age_s"] < STALE_AFTER, beat
    # The skew is real in the server: libfaketime is loaded in its process (the
    # probe above shows what it does to time.time()); the events it logged are
    # nevertheless stamped with the database's clock, not its own.
    maps = Path(f"/proc/{ahead.server_pid()}/maps").read_text()
    assert str(FAKETIME_LIB) in maps, "libfaketime is not loaded in the hour-ahead server"
    stamped = observer.query(
        "SELECT extract(epoch FROM clock_timestamp() - max(at)) FROM {s}.events"
        " WHERE project = %s AND session_id = 'hour-ahead'",
        [observer.project],
    )[0][0]
    assert 0 <= float(stamped) < 60, f"an event stamped {stamped} s from the database's clock"

    assert ahead.call("release", fencing_token=mine["fencing_token"])["outcome"] == "released"
    refused = ahead.call("claim_plan", plan_id="k1", force=True)
    assert refused["outcome"] == "held_by_other", refused  # fresh: never displaced
    assert refused["holder"]["status"] == "active", refused
    assert refused["holder"]["heartbeat_age_s"] < STALE_AFTER, refused

    # The on-time holder stops beating (kill -9): the hour-ahead server sees it
    # stale exactly when the database's clock says so, and takes it only with force.
    normal.kill9()
    wait_until(
        lambda: observer.heartbeat_age("on-time") > STALE_AFTER + 0.2,
        timeout=STALE_AFTER + 15,
        what="the on-time holder to go stale",
    )
    db_age = observer.heartbeat_age("on-time")
    row = seen_by(ahead, "on-time")
    assert row["status"] == "stale", row
    assert abs(row["heartbeat_age_s"] - db_age) < 2.0, (row, db_age)
    assert ahead.call("claim_plan", plan_id="k1")["outcome"] == "held_by_other"
    taken = ahead.call("claim_plan", plan_id="k1", force=True)
    assert taken["outcome"] == "taken_over" and taken["takeover_reason"] == "forced_stale", taken
    observer.stop()
    assert observer.violations == []
    assert observer.history_checks() == []
    _check_takeovers(_takeovers(observer))
    print(
        f"\nfaketime offset {offset:.0f} s; on-time holder age by the database "
        f"{db_age:.2f} s, as seen by the hour-ahead host {row['heartbeat_age_s']}"
    )
