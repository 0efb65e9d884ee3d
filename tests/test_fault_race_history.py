"""Fault 1: races with a checked history, CI size.

Free-running processes claim/heartbeat/release several plans with no barrier;
every process logs what it saw and ``race_harness.check_history`` merges the
logs (no two holders at once, tokens strictly increasing per plan, no granted
claim lost). ``bench/race_history.py`` runs 10,000 rounds and prints claims/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from race_harness import RaceConfig, run_race

pytestmark = pytest.mark.slow


def test_free_running_race_over_three_plans_has_a_clean_history(tmp_path: Path) -> None:
    config = RaceConfig(processes=8, rounds=60, plans=3, lockstep=False, seed=3)
    report = run_race(tmp_path / "sessions", tmp_path / "work", config, timeout_s=120)

    assert report.violations == []
    assert report.attempts == 8 * 60
    assert report.grants > 3  # contention and success both happened
    assert report.grants < report.attempts
    assert sum(report.final_tokens.values()) == report.grants


def test_lockstep_race_over_two_plans_has_one_winner_per_plan_and_round(tmp_path: Path) -> None:
    config = RaceConfig(processes=8, rounds=40, plans=2, lockstep=True, seed=4)
    report = run_race(tmp_path / "sessions", tmp_path / "work", config, timeout_s=120)

    assert report.violations == []
    assert report.attempts == 8 * 40
