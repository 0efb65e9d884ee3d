"""Fault 2: kill -9 at random points, also at the write/rename failpoint.

CI size: 120 kills (half with the failpoint). ``bench/kill9.py`` runs more and
prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kill_harness import run_kills

pytestmark = pytest.mark.slow


def test_kill_minus_nine_leaves_readable_files_and_a_claim_the_next_session_takes(
    tmp_path: Path,
) -> None:
    report = run_kills(tmp_path / "sessions", tmp_path / "work", kills=120, seed=1)

    assert report.violations == []
    assert report.kills == 120
    assert report.failpoint_kills == 60
    # The kills must actually hit holders and writes, or the test proves nothing.
    assert report.victim_grants > 0
    assert report.victim_held_at_kill > 0
    assert report.takeovers_by_proof_of_death == report.victim_held_at_kill
