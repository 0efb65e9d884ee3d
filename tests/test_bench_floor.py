"""bench/floor.py judges invariants, never speed: its checks can fail, and its
smoke run over the real product holds every invariant.

- the contended race's wiring: racers driven against a fake server that
  grants every claim (a broken lock) produce violations; against a fake that
  is a correct lease they produce none, and the final claim is checked;
- a real server: a tool error is an invariant error, a clean EOF exit is
  accepted, a non-zero exit is not;
- the records written in the documented format are read back by the raw
  floor and listed by a real server; ``main`` exits 1 when a row reports a
  violation;
- ``bench/floor.py --quick --json`` once (about 15 s): exit 0, every row
  measured, no violation. Timings are never looked at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import floor  # noqa: E402
import floor_race  # noqa: E402
from floor_support import InvariantError, Rpc, floor_argv, populate, product_argv, raw_read  # noqa: E402


class FakeLease:
    """One plan's lease shared by fake servers: ``broken`` grants every claim."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.holder: str | None = None
        self.token = 0
        self.guard = threading.Lock()


class FakeServer:
    """Answers ``claim_plan``/``release`` like the product, from a FakeLease."""

    def __init__(self, name: str, lease: FakeLease) -> None:
        self.name, self.lease = name, lease

    def call(self, tool: str, **args: Any) -> dict[str, Any]:
        lease = self.lease
        with lease.guard:
            if tool == "claim_plan":
                if lease.holder is not None and not lease.broken:
                    return {"structuredContent": {"claimed": False, "outcome": "held_by_other"}}
                lease.holder = self.name
                lease.token += 1
                token = lease.token if not lease.broken else 1  # broken: tokens repeat
                reply = {"claimed": True, "outcome": "claimed", "fencing_token": token}
                return {"structuredContent": reply}
            if lease.holder == self.name:
                lease.holder = None
            return {"structuredContent": {"outcome": "released", "released": True}}


@pytest.mark.parametrize("broken", [False, True])
def test_race_wiring_finds_double_grants(tmp_path: Path, broken: bool) -> None:
    lease = FakeLease(broken)
    servers = [FakeServer(f"r{i}", lease) for i in range(4)]
    result = floor_race.race(tmp_path, servers, "plan", 30)  # type: ignore[arg-type]
    if broken:
        assert result["violations"], result
        assert any("duplicate fencing tokens" in v for v in result["violations"])
    else:
        assert result["violations"] == [], result["violations"]
        assert result["grants"] >= 1
        assert result["final_token"] == lease.token  # the final claim: token after the last


def test_race_final_claim_must_follow_the_last_token(tmp_path: Path) -> None:
    lease = FakeLease(broken=False)
    servers = [FakeServer(f"r{i}", lease) for i in range(2)]

    def skipping(server: FakeServer) -> Any:
        real_call = server.call

        def call(tool: str, **args: Any) -> dict[str, Any]:
            reply = real_call(tool, **args)
            if tool == "release":
                lease.token += 5  # the ledger skipped tokens: the final claim must see it
            return reply

        return call

    for server in servers:
        server.call = skipping(server)  # type: ignore[method-assign]
    result = floor_race.race(tmp_path, servers, "plan", 5)  # type: ignore[arg-type]
    assert any("after the race a claim answered" in v for v in result["violations"]), result


def test_real_server_tool_error_and_clean_exit(tmp_path: Path) -> None:
    server = Rpc(floor_argv(), tmp_path, "floor")
    try:
        server.initialize()
        assert "hi" in str(server.call("echo", text="hi"))
        with pytest.raises(InvariantError, match="echo returned an error"):
            server.call("echo", wrong=1)
        server.close()  # exit 0 on EOF: accepted
    finally:
        server.kill()


def test_non_zero_exit_is_an_invariant_error(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"]
    server = Rpc(argv, tmp_path, "bad")
    with pytest.raises(InvariantError, match="exited 3"):
        server.close()


def test_records_are_listed_by_the_product(tmp_path: Path) -> None:
    directory = tmp_path / "sessions"
    counts = populate(directory, 40)
    assert raw_read(directory) == 40
    assert counts == {"live": 32, "stale": 4, "ended": 2, "dead": 2, "claims": 4}
    server = Rpc(product_argv(directory, "lister"), tmp_path, "product")
    try:
        server.initialize()
        listed = server.call("list_sessions", include_ended=True)["structuredContent"]
        assert listed["unreadable"] == []
        status = {s["session_id"]: s["status"] for s in listed["sessions"]}
        assert len(status) == 41
        assert status["s00000-bench"] == "active"
        assert status["s00016-bench"] == "stale"
        assert status["s00018-bench"] == "ended"
        assert status["s00019-bench"] == "dead"
        server.close()
    finally:
        server.kill()


def test_main_exits_1_on_a_violation_and_0_without(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    row = floor.Row("figure", "≤ 3", product=[2.0], floor=[1.0])
    monkeypatch.setattr(floor, "run", lambda sizes, today, work, baseline: ([row], []))
    assert floor.main(["--quick", "--markdown"]) == 0
    assert "| figure | 2.00 ms (2.00" in capsys.readouterr().out
    monkeypatch.setattr(floor, "run", lambda sizes, today, work, baseline: ([row], ["two holders"]))
    assert floor.main(["--quick", "--json"]) == 1


def test_quick_run_holds_every_invariant() -> None:
    """The smoke run over the real product: exit 0, every row measured, no violation
    (timings are not looked at)."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "floor.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert report["ok"] and report["violations"] == []
    assert len(report["rows"]) == 8
    for row in report["rows"]:
        assert row["product"] is not None, row["figure"]
        assert row["violations"] == [], row
    assert all(row["floor"] is not None for row in report["rows"][:7])
