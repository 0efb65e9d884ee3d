"""This process's ancestors read from ``/proc``: the same pids as
``psutil.Process().parents()`` (the rule the status line and the git hooks use
to find their conversation's server), without importing psutil."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from mcp_server_heartbeat.host import probe
from mcp_server_heartbeat.host.probe import ancestor_pids


def psutil_ancestors() -> frozenset[int]:
    return frozenset(parent.pid for parent in psutil.Process().parents())


def test_the_ancestors_are_psutils() -> None:
    assert ancestor_pids() == psutil_ancestors()
    assert os.getppid() in ancestor_pids()


def test_through_a_shell_in_a_fresh_process() -> None:
    code = (
        "import json, psutil; from mcp_server_heartbeat.host.probe import ancestor_pids; "
        "print(json.dumps([sorted(ancestor_pids()), "
        "sorted(p.pid for p in psutil.Process().parents())]))"
    )
    done = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" -c "{code}"; :'],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ours, theirs = json.loads(done.stdout)
    assert ours == theirs
    assert os.getpid() in ours  # the shell's parent: this test


def test_without_proc_psutil_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_has_proc", lambda: False)
    assert ancestor_pids() == psutil_ancestors()


def test_an_ancestor_it_may_not_read_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    real = probe._family

    def family(pid: int) -> tuple[int, int] | None:
        if pid == os.getppid():
            raise PermissionError(13, "Permission denied")
        return real(pid)

    monkeypatch.setattr(probe, "_family", family)
    assert ancestor_pids() == frozenset()  # as psutil's AccessDenied did to every caller


def test_the_walk_stops_at_a_parent_younger_than_its_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = probe._family
    parent = os.getppid()
    grandparent = real(parent)[0]  # type: ignore[index]

    def family(pid: int) -> tuple[int, int] | None:
        found = real(pid)
        if pid == grandparent and found is not None:
            return found[0], 10**12  # its pid now names a process younger than its child
        return found

    monkeypatch.setattr(probe, "_family", family)
    assert ancestor_pids() == frozenset({parent})


def test_a_parent_with_no_entry_ends_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = probe._family

    def family(pid: int) -> tuple[int, int] | None:
        return None if pid == os.getppid() else real(pid)

    monkeypatch.setattr(probe, "_family", family)
    assert ancestor_pids() == frozenset()
