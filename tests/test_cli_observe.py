"""The human command line (issue 4): ``status``, ``trace``, ``statusline``,
``history`` and ``gc`` run as real processes against a directory built by the
real service and store (``observe_world.py``: a session in every status,
claims, a forced takeover, a takeover on proof of death, a lost claim)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcp_server_heartbeat.cli.statusline import LightRecord
from mcp_server_heartbeat.domain.liveness import Thresholds, assess
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.host.probe import probe_process
from mcp_server_heartbeat.store.directory.light import scan
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from observe_world import (
    BRANCHES,
    DURATION_S,
    EXPECTED_STATUS,
    FEAT_X_ACTIVE_S,
    IDS,
    build_world,
    real_pids,
)

SHORT = {name: sid[:8] for name, sid in IDS.items()}


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A project root whose heartbeat directory (``sessions``) holds the world,
    anchored so that its t=1000 s is now."""
    start = datetime.now(UTC) - timedelta(seconds=DURATION_S)
    build_world(tmp_path / "sessions", start, real_pids())
    return tmp_path


def cli(
    root: Path,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mcp_server_heartbeat <args> --root <root> --dir sessions``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTBEAT_", "CLAUDE_"))}
    full_env.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_server_heartbeat",
            *args,
            "--root",
            str(root),
            "--dir",
            "sessions",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or root,
        timeout=60,
        check=False,
    )


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory`` with its bytes and mtime (ns)."""
    return {
        str(path.relative_to(directory)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# -- status --------------------------------------------------------------------


def test_status_table_shows_every_status_and_the_claims(world: Path) -> None:
    done = cli(world, "status", "--all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "7 sessions (3 active, 1 idle, 1 stale, 1 dead, 1 ended)" in lines
    for name, status in EXPECTED_STATUS.items():
        row = next(line for line in lines if line.startswith(SHORT[name]))
        assert f" {status} " in row, row
        assert f" {BRANCHES[name]} " in row
    stale_row = next(line for line in lines if line.startswith(SHORT["C"]))
    assert "6m4" in stale_row and "ago" in stale_row  # last beat ~400 s ago
    assert "kata-pr-prepare:step2" in stale_row
    claims = lines[lines.index(next(line for line in lines if line.startswith("PLAN"))) :]
    assert any(line.startswith("043") and SHORT["A"] in line and " 2 " in line for line in claims)
    assert any("044" in line and "took over: forced_stale" in line for line in claims)
    assert any("045" in line and "took over: proof_of_death" in line for line in claims)
    assert not any(line.startswith("046") for line in claims)  # released
    assert "\033[" not in done.stdout  # no colour when not on a terminal


def test_status_hides_ended_sessions_unless_all(world: Path) -> None:
    done = cli(world, "status")
    assert done.returncode == 0
    assert SHORT["G"] not in done.stdout
    assert "ended sessions hidden" in done.stdout


def test_status_json_has_stable_fields_and_the_same_data(world: Path) -> None:
    done = cli(world, "status", "--json", "--all")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"directory", "generated_at", "sessions", "claims", "unreadable"}
    by_id = {s["session_id"]: s for s in data["sessions"]}
    assert {name: by_id[sid]["status"] for name, sid in IDS.items()} == EXPECTED_STATUS
    contract = {
        "session_id",
        "plan_id",
        "branch",
        "cwd",
        "role",
        "entrypoint",
        "started_at",
        "last_heartbeat",
        "last_activity",
        "previous_session",
        "fencing_token",
        "host",
        "pid",
        "status",
        "health",
        "heartbeat_age_s",
        "seconds_until_stale",
        "relationship",
        "process_alive",
    }
    assert all(contract <= set(s) for s in data["sessions"])
    a = by_id[IDS["A"]]
    assert (a["plan_id"], a["fencing_token"], a["health"]) == ("043", 2, "healthy")
    assert 290 < a["seconds_until_stale"] <= 300
    claims = {c["plan_id"]: c for c in data["claims"]}
    assert set(claims) == {"043", "044", "045"}
    assert (claims["044"]["holder"], claims["044"]["fencing_token"]) == (IDS["E"], 2)
    assert claims["045"]["takeover_reason"] == "proof_of_death"
    assert 680 < claims["043"]["held_for_s"] < 720  # claimed at t=310


def test_status_marks_the_callers_own_session(world: Path) -> None:
    done = cli(world, "status", env={"CLAUDE_CODE_SESSION_ID": IDS["E"]})
    assert f"{SHORT['E']} (you)" in done.stdout


# -- trace ---------------------------------------------------------------------


def test_trace_markdown_sums_active_time_by_hand(world: Path) -> None:
    done = cli(world, "trace", "--branch", "feat-x")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    # A 0->1000, C 0->600, E 450->1000, G 0->100 (ended): 1000+600+550+100 = 2250 s
    assert "- Cumulative active time: 37m30s" in text
    assert "- Sessions: 4" in text
    assert "- Worktree: `/work/feat-x`" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    # by start time, then id: G, A, C started together at t=0; E at 450
    assert [row.split("`")[1] for row in rows] == [SHORT[n] for n in ("G", "A", "C", "E")]
    row_a = next(row for row in rows if SHORT["A"] in row)
    assert row_a.endswith("| 16m40s |") and "| executor |" in row_a
    row_e = next(row for row in rows if SHORT["E"] in row)
    assert row_e.endswith("| 9m10s |") and "| reviewer |" in row_e


def test_trace_json_gives_seconds(world: Path) -> None:
    done = cli(world, "trace", "--branch", "feat-x", "--format", "json")
    data = json.loads(done.stdout)
    assert data["cumulative_active_s"] == pytest.approx(2250.0, abs=0.01)
    got = {row["session_id"]: row["active_s"] for row in data["sessions"]}
    assert got == pytest.approx({IDS[n]: s for n, s in FEAT_X_ACTIVE_S.items()}, abs=0.01)
    main = json.loads(cli(world, "trace", "--branch", "main", "--format", "json").stdout)
    # B 0->1000, D 0->0 (killed), F 900->1000
    assert main["cumulative_active_s"] == pytest.approx(1100.0, abs=0.01)


def test_trace_outside_git_without_branch_is_a_usage_error(world: Path) -> None:
    done = cli(world, "trace")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--branch" in done.stderr


# -- history -------------------------------------------------------------------


def test_history_lists_a_plans_events_newest_last(world: Path) -> None:
    done = cli(world, "history", "044")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line[:4].isdigit()]
    assert [row.split()[1:4] for row in rows] == [
        ["claim_granted", SHORT["C"], "1"],
        ["claim_taken_over", SHORT["E"], "2"],
        ["claim_lost", SHORT["C"], "1"],
    ]
    assert "forced_stale, force" in rows[1]
    assert f"held by {SHORT['E']}, last fencing token 2; 2 transitions in the log" in done.stdout
    data = json.loads(cli(world, "history", "043", "--json").stdout)
    assert (data["holder"], data["fencing_token"], data["transitions"]) == (IDS["A"], 2, 3)
    assert [(e["event"], e.get("fencing_token")) for e in data["events"]] == [
        ("claim_granted", 1),
        ("claim_released", 1),
        ("claim_granted", 2),
    ]


def test_history_of_an_unknown_plan_says_so(world: Path) -> None:
    done = cli(world, "history", "999")
    assert done.returncode == 0 and "no events for plan 999" in done.stdout


# -- statusline ----------------------------------------------------------------


def status_input(root: Path, session_id: str | None) -> str:
    payload: dict[str, object] = {
        "hook_event_name": "Status",
        "cwd": str(root),
        "model": {"id": "claude-opus-4-1", "display_name": "Opus"},
        "workspace": {"current_dir": str(root), "project_dir": str(root)},
    }
    if session_id:
        payload["session_id"] = session_id
    return json.dumps(payload)


def test_statusline_shows_plan_age_others_and_a_lost_claim(world: Path) -> None:
    a = cli(world, "statusline", stdin=status_input(world, IDS["A"]))
    assert a.returncode == 0
    assert a.stdout.startswith("♥ 043 #2 · beat ")
    assert a.stdout.rstrip().endswith("· 3 others live")  # B, E, F
    c = cli(world, "statusline", stdin=status_input(world, IDS["C"]))
    assert c.stdout.startswith(f"⚠ lost 044 to {SHORT['E']} · beat 6m4")
    assert "(stale) · 4 others live" in c.stdout
    b = cli(world, "statusline", stdin=status_input(world, IDS["B"]))
    assert b.stdout.startswith("♥ no plan · beat ")
    unknown = cli(world, "statusline", stdin=status_input(world, "not-a-session"))
    assert unknown.stdout == "♥ no session record · 4 others live\n"
    assert cli(world, "statusline", stdin="not json").stdout == "♥ no session id · 4 others live\n"


def test_statusline_finds_the_project_from_its_input(world: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "mcp_server_heartbeat", "statusline"],
        input=status_input(world, IDS["A"]),
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CLAUDE_")},
            "HEARTBEAT_DIR": "sessions",
        },
        check=False,
    )
    assert done.stdout.startswith("♥ 043 #2"), done.stdout + done.stderr


def test_statusline_never_fails(tmp_path: Path) -> None:
    done = cli(tmp_path / "missing", "statusline", stdin="{}", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("♥ heartbeat: root") and done.stdout.count("\n") == 1


def test_statusline_reads_records_as_the_store_does(world: Path) -> None:
    """The statusline's pydantic-free parse gives liveness.assess the same facts
    as the store's SessionRecord, so every status agrees."""
    directory = world / "sessions"
    now = datetime.now(UTC)
    records, _ = DirectoryStore(directory).list_sessions()
    observer = observer_here(None, records[0].host or "")
    thresholds = Thresholds(stale_after=300.0, idle_after=600.0)
    expected = {
        r.session_id: assess(r, now, observer, probe_process, thresholds).status for r in records
    }
    light = {
        r["session_id"]: assess(LightRecord.of(r), now, observer, probe_process, thresholds).status
        for r in scan(directory)
    }
    assert light == expected
    assert sorted(expected.values()) == sorted(EXPECTED_STATUS.values())


# -- gc ------------------------------------------------------------------------


def test_gc_dry_run_then_removes_only_old_ended_and_dead(world: Path) -> None:
    directory = world / "sessions"
    claims_before = snapshot(directory / "claims")
    before = snapshot(directory)
    dry = cli(world, "gc", "--older-than", "10m", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert snapshot(directory) == before
    assert f"would remove {SHORT['D']}" in dry.stdout and f"would remove {SHORT['G']}" in dry.stdout

    done = cli(world, "gc", "--older-than", "10m")
    assert done.returncode == 0, done.stderr
    assert f"removed {SHORT['D']}  (dead" in done.stdout
    assert f"removed {SHORT['G']}  (ended" in done.stdout
    assert "removed 2 session records" in done.stdout
    left = {p.stem for p in directory.glob("*.json")}
    assert left == {IDS[n] for n in "ABCEF"}
    assert snapshot(directory / "claims") == claims_before  # ledgers untouched
    # events older than 10 minutes (t < 400 s) are gone, later ones kept
    events = DirectoryStore(directory).read_events()
    assert events and all(e.at >= datetime.now(UTC) - timedelta(minutes=11) for e in events)
    assert [e.event for e in events if e.plan_id == "044"] == ["claim_taken_over", "claim_lost"]


def test_gc_removes_old_temp_files_of_killed_writes_only(world: Path) -> None:
    directory = world / "sessions"
    old = [directory / ".x.json.abc123.tmp", directory / "claims" / ".043.json.def456.tmp"]
    fresh = directory / ".y.json.ghi789.tmp"
    for path in [*old, fresh]:
        path.write_text('{"half": ')
    long_ago = (datetime.now(UTC) - timedelta(days=8)).timestamp()
    for path in old:
        os.utime(path, (long_ago, long_ago))

    def kept() -> dict[str, bytes]:
        return {
            str(p.relative_to(directory)): p.read_bytes()
            for p in [*directory.glob("*.json"), *directory.glob("claims/*.json")]
        }

    before = kept()
    done = cli(world, "gc")
    assert done.returncode == 0, done.stderr
    assert "removed 2 temp files of interrupted writes" in done.stdout
    assert [p.exists() for p in old] == [False, False]
    assert fresh.exists()
    assert kept() == before  # records and claim ledgers untouched


def test_gc_default_keeps_a_week(world: Path) -> None:
    done = cli(world, "gc")
    assert done.returncode == 0
    assert "removed 0 session records older than 7d00h" in done.stdout
    assert len(list((world / "sessions").glob("*.json"))) == 7


# -- every command -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--bogus"],
        ["trace", "--format", "xml"],
        ["gc", "--older-than", "soon"],
        ["history"],
        ["history", "../etc"],
        ["status", "--stale-after", "-5"],
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(world: Path, args: list[str]) -> None:
    done = cli(world, *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("mcp-server-heartbeat")
    assert done.stdout == ""


def test_reading_never_creates_the_directory(tmp_path: Path) -> None:
    for args in (
        ["status"],
        ["status", "--json"],
        ["trace", "--branch", "x"],
        ["history", "043"],
        ["gc"],
    ):
        done = cli(tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
    assert cli(tmp_path, "statusline", stdin="{}").returncode == 0
    assert not (tmp_path / "sessions").exists()


def test_reading_commands_change_nothing(world: Path) -> None:
    directory = world / "sessions"
    before = snapshot(directory)
    for args in (
        ["status", "--all"],
        ["status", "--json"],
        ["trace", "--branch", "feat-x"],
        ["history", "044"],
    ):
        assert cli(world, *args).returncode == 0
    cli(world, "statusline", stdin=status_input(world, IDS["A"]))
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--all"],
        ["trace", "--branch", "main"],
        ["history", "043"],
        ["gc", "--dry-run"],
        ["statusline"],
    ],
)
def test_commands_do_not_import_mcp(world: Path, args: list[str]) -> None:
    code = (
        "import sys; from mcp_server_heartbeat.cli.main import main; "
        f"rc = main({[*args, '--root', str(world), '--dir', 'sessions']!r}); "
        "bad = sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')); "
        "print('MCP-MODULES', bad, file=sys.stderr); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input="{}", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "MCP-MODULES []" in done.stderr


def test_statusline_does_not_load_pydantic(world: Path) -> None:
    """The status line runs on every refresh: records are parsed as plain JSON."""
    code = (
        "import sys; from mcp_server_heartbeat.cli.main import main; "
        f"rc = main({['statusline', '--root', str(world), '--dir', 'sessions']!r}); "
        "print('PYDANTIC', 'pydantic' in sys.modules, file=sys.stderr); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=status_input(world, IDS["A"]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("♥ 043")
    assert "PYDANTIC False" in done.stderr


def test_trace_defaults_to_the_current_git_branch(world: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "feat-x", str(world)], check=True)
    done = cli(world, "trace")
    assert done.returncode == 0, done.stderr
    assert "- Branch: `feat-x`" in done.stdout and "time: 37m30s\n" in done.stdout


def test_status_colours_only_on_request(world: Path) -> None:
    from mcp_server_heartbeat.cli.status import render
    from mcp_server_heartbeat.session.observe import read_snapshot

    store = DirectoryStore(world / "sessions")
    snap = read_snapshot(
        store,
        datetime.now(UTC),
        observer_here(None),
        probe_process,
        Thresholds(),
    )
    coloured = "\n".join(render(snap, colour=True))
    plain = "\n".join(render(snap, colour=False))
    assert "\033[31mdead" in coloured and "\033[32mactive" in coloured
    assert "\033[" not in plain


def test_statusline_says_when_tracking_is_off(world: Path) -> None:
    (world / ".ahrena").mkdir()
    (world / ".ahrena" / ".directives").write_text("session_tracking:\n  enabled: false\n")
    done = cli(world, "statusline", stdin=status_input(world, IDS["A"]))
    assert done.stdout == "♥ session tracking is off\n"


# -- health and time-to-stale only where they mean something ("Fault round two", 8) --


def _columns(lines: list[str], name: str) -> dict[str, str]:
    """One session row of the status table, cut at the header's column starts."""
    header = next(line for line in lines if line.startswith("SESSION"))
    names = re.split(r"\s{2,}", header.strip())
    starts = [header.index(col) for col in names]
    row = next(line for line in lines if line.startswith(SHORT[name]))
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return dict(zip(names, cells, strict=True))


def test_status_shows_no_health_or_stale_in_for_sessions_that_are_over(world: Path) -> None:
    done = cli(world, "status", "--all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in ("D", "G"):  # dead, ended
        row = _columns(lines, name)
        assert (row["HEALTH"], row["STALE IN"]) == ("-", "-"), row
    assert _columns(lines, "C")["STALE IN"] == "-"  # stale already: no countdown
    active = _columns(lines, "A")
    assert active["HEALTH"] == "healthy" and active["STALE IN"].endswith("s"), active
    data = json.loads(cli(world, "status", "--json", "--all").stdout)
    by_id = {s["session_id"]: s for s in data["sessions"]}
    for name in ("D", "G"):
        view = by_id[IDS[name]]
        assert (view["health"], view["seconds_until_stale"]) == (None, None), view
    assert by_id[IDS["A"]]["health"] == "healthy"


def test_trace_prints_the_cumulative_active_time_once() -> None:
    from mcp_server_heartbeat.cli.trace import render_markdown
    from mcp_server_heartbeat.session.observe import Trace

    text = render_markdown(Trace(branch="b", worktrees=[], sessions=[], cumulative_active_s=7.6))
    line = next(line for line in text.splitlines() if "Cumulative" in line)
    assert line == "- Cumulative active time: 7s", line
