"""Issue 2's acceptance test of the core: real processes racing for one plan.

8 processes, released together by a barrier, 200 rounds, all through the real
SessionService and DirectoryStore in one temp directory. Every round must have
exactly one winner, fencing tokens must strictly increase, and an independent
check (an O_CREAT|O_EXCL marker file plus per-process hold intervals on the
system-wide monotonic clock) must never see two holders at once. The harness
lives in ``race_harness.py`` and is shared with the fault suite and
``bench/race_history.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from race_harness import RaceConfig, check_history, run_race

pytestmark = pytest.mark.slow


def test_eight_processes_two_hundred_rounds_one_winner_each(tmp_path: Path) -> None:
    config = RaceConfig(processes=8, rounds=200, plans=1, lockstep=True)
    report = run_race(tmp_path / "sessions", tmp_path / "work", config, timeout_s=120)

    assert report.violations == []
    assert report.exit_codes == [0] * 8
    assert report.attempts == 8 * 200
    assert report.grants == 200  # exactly one winner per round
    assert report.releases == 200
    assert report.final_tokens == {"plan-0": 200}  # one new token per claim, none skipped


def test_checker_catches_two_holders_and_a_token_going_back() -> None:
    """The checker itself can fail: feed it a history with a double grant."""
    config = RaceConfig(processes=2, rounds=1, lockstep=True)
    events = [
        {"e": "grant", "w": 0, "r": 0, "p": "plan-0", "o": "claimed", "tok": 2, "t0": 0, "t1": 10},
        {"e": "grant", "w": 1, "r": 0, "p": "plan-0", "o": "claimed", "tok": 1, "t0": 0, "t1": 12},
        {"e": "release", "w": 0, "r": 0, "p": "plan-0", "o": "released", "tok": 2, "t0": 20},
        {"e": "release", "w": 1, "r": 0, "p": "plan-0", "o": "stale_token", "tok": 1, "t0": 21},
    ]
    violations = check_history(events, config)
    text = "\n".join(violations)
    assert "not increasing" in text
    assert "two holders at once" in text
    assert "2 winners" in text
    assert "lost: release answered stale_token" in text


def test_the_race_detects_double_holders_when_the_lock_is_sabotaged(tmp_path: Path) -> None:
    """The same harness with the store's lock switched off must report violations."""
    config = RaceConfig(processes=8, rounds=30, plans=1, lockstep=True, sabotage_lock=True)
    report = run_race(tmp_path / "sessions", tmp_path / "work", config, timeout_s=120)

    text = "\n".join(report.violations)
    assert report.grants > 30
    assert "winners" in text
    assert "two holders at once" in text or "marker exists" in text
