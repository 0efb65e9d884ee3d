"""A heartbeat directory with a session in every status, built by the real
service and store: the fixture of the observation commands' tests (and of the
README's captured output, via ``python tests/observe_world.py DIR``).

Timeline, in seconds after ``start`` (the clock is moved by hand):

=====  =====================================================================
t        what happens
=====  =====================================================================
0      A (feat-x, executor), B (main), C (feat-x), D (main) and G (feat-x)
       start. A claims 043, C claims 044, D claims 045, G claims 046.
100    G releases 046 and ends ("disconnect").
300    A releases 043 ("done"); at 310 A claims 043 again (token 2).
450    E (feat-x) starts; at 500 it takes 044 over from stale C with force.
600    C beats: it learns that it lost 044 (claim_lost).
900    F (main) starts and takes 045 over from D, whose process is dead.
1000   A, E, F call heartbeat; B only beats in the background (no tool call).
=====  =====================================================================

At t=1000 (stale after 300 s, idle after 600 s): A, E, F are active, B is
idle, C is stale (last beat at 600), D is dead, G is ended. The Session Trace
of feat-x: A 1000 s, C 600 s, E 550 s, G 100 s — 2,250 s in all.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import Identity
from mcp_server_heartbeat.host.probe import ProcessProbe, probe_process, process_start_time
from mcp_server_heartbeat.session.service import SessionService
from mcp_server_heartbeat.store.directory.store import DirectoryStore

IDS = {
    "A": "a1f3c2e4-0000-4000-8000-00000000000a",
    "B": "b27d9e10-0000-4000-8000-00000000000b",
    "C": "c3a8b6f2-0000-4000-8000-00000000000c",
    "D": "d4c01a7e-0000-4000-8000-00000000000d",
    "E": "e5b2f9c1-0000-4000-8000-00000000000e",
    "F": "f6e4d3b8-0000-4000-8000-00000000000f",
    "G": "0a7c5e2d-0000-4000-8000-000000000010",
}
BRANCHES = {
    "A": "feat-x",
    "B": "main",
    "C": "feat-x",
    "D": "main",
    "E": "feat-x",
    "F": "main",
    "G": "feat-x",
}
EXPECTED_STATUS = {
    "A": "active",
    "B": "idle",
    "C": "stale",
    "D": "dead",
    "E": "active",
    "F": "active",
    "G": "ended",
}
FEAT_X_ACTIVE_S = {"A": 1000.0, "C": 600.0, "E": 550.0, "G": 100.0}
DURATION_S = 1000.0


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, start: datetime, seconds: float) -> None:
        self.now = start + timedelta(seconds=seconds)


@dataclass
class Pids:
    """A live pid (with its start time) and a pid proven dead, for the probe."""

    alive: int
    alive_started: datetime | None
    dead: int
    dead_started: datetime | None


def real_pids() -> Pids:
    """pid 1 (always running) and the pid of a child that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_time(child.pid)
    child.wait()
    return Pids(
        alive=1,
        alive_started=process_start_time(1),
        dead=child.pid,
        dead_started=started or datetime(2000, 1, 1, tzinfo=UTC),
    )


def build_world(
    directory: Path,
    start: datetime,
    pids: Pids,
    probe: ProcessProbe = probe_process,
    cwd: str = "/work/feat-x",
) -> tuple[dict[str, SessionService], Callable[[], datetime]]:
    """Build the directory (see module doc); returns the services and the clock,
    left at ``start + 1000 s``."""
    DirectoryStore(directory).prepare()
    clock = ManualClock(start)
    services: dict[str, SessionService] = {}

    def session(name: str) -> SessionService:
        dead = name == "D"
        identity = Identity(
            session_id=IDS[name],
            session_id_source="test",
            entrypoint="cli" if name != "F" else "claude-vscode",
            agent_version="claude-code/2.1.329",
            branch=BRANCHES[name],
            cwd=cwd if BRANCHES[name] == "feat-x" else "/work/main",
            host=socket.gethostname(),
            pid=pids.dead if dead else pids.alive,
            pid_started_at=pids.dead_started if dead else pids.alive_started,
            client_pid=1000 + ord(name),
        )
        service = SessionService(
            DirectoryStore(directory),
            identity,
            Thresholds(stale_after=300.0, idle_after=600.0),
            interval=30.0,
            clock=clock,
            probe=probe,
        )
        service.start()
        services[name] = service
        return service

    def at(seconds: float) -> None:
        clock.at(start, seconds)

    at(0)
    for name in "ABCDG":
        session(name)
    services["A"].heartbeat(role="executor", activity="kata-plan:step1")
    assert services["A"].claim("043").outcome == "claimed"
    assert services["C"].claim("044").outcome == "claimed"
    assert services["D"].claim("045").outcome == "claimed"
    assert services["G"].claim("046").outcome == "claimed"
    at(100)
    services["G"].release("046", reason="merged")
    services["G"].end("disconnect")
    at(300)
    services["A"].release("043", reason="done")
    at(310)
    assert services["A"].claim("043").fencing_token == 2
    at(450)
    session("E")
    at(500)
    assert services["E"].claim("044").outcome == "held_by_other"
    taken = services["E"].claim("044", force=True)
    assert taken.outcome == "taken_over", taken.message
    at(600)
    lost = services["C"].heartbeat(activity="kata-pr-prepare:step2")
    assert lost.claim_lost is not None
    at(900)
    session("F")
    took = services["F"].claim("045")
    assert took.outcome == "taken_over" and took.takeover_reason == "proof_of_death", took
    at(1000)
    services["A"].heartbeat(activity="kata-pr-prepare:step3")
    services["E"].heartbeat(role="reviewer", activity="review:round1")
    services["F"].heartbeat(role="executor")
    services["B"].beat()
    return services, clock


if __name__ == "__main__":  # build a directory anchored at now, for the README
    target = Path(sys.argv[1])
    now = datetime.now(UTC)
    build_world(target, now - timedelta(seconds=DURATION_S), real_pids())
    print(target)
