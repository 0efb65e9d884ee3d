"""``atomic.read_guarded``: a file is read whole in one ``read`` when its size is
what ``fstat`` said, and still whole (up to the limit) when it grew meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_server_heartbeat.store.directory import atomic
from mcp_server_heartbeat.store.directory.atomic import UnreadableFile, read_guarded


def test_one_read_for_a_file_of_the_size_fstat_gave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.json").write_bytes(b"x" * 5000)
    reads: list[int] = []
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        reads.append(n)
        return real(fd, n)

    monkeypatch.setattr(atomic.os, "read", counting)
    assert read_guarded(tmp_path / "a.json") == b"x" * 5000
    assert reads == [5001]
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_guarded("a.json", dir_fd=fd) == b"x" * 5000
    finally:
        os.close(fd)


def test_a_file_that_grew_since_fstat_is_read_whole_up_to_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "grows.json"
    path.write_bytes(b"y" * 300_000)
    real = os.fstat

    def shrunk(fd: int) -> os.stat_result:
        info = real(fd)
        fields = list(info)
        fields[6] = 10  # st_size as it was a moment before the writer appended
        return os.stat_result(fields)

    monkeypatch.setattr(atomic.os, "fstat", shrunk)
    assert read_guarded(path) == b"y" * 300_000
    with pytest.raises(UnreadableFile, match="too large"):
        read_guarded(path, limit=100_000)
