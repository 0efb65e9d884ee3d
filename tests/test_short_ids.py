"""Short session ids in CLI output never collide: each is lengthened beyond 8
characters until unique among the ids shown together, as git does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mcp_server_heartbeat.session.observe import short_ids
from stdio_client import clean_env


def test_prefixes_grow_only_where_ids_share_them():
    shorten = short_ids(["abcdef0123-one", "abcdef0123-two", "9d81e4b2-x", None])
    assert shorten("abcdef0123-one") == "abcdef0123-o"
    assert shorten("abcdef0123-two") == "abcdef0123-t"
    assert shorten("9d81e4b2-x") == "9d81e4b2"
    assert shorten(None) == "-"


def test_an_id_that_is_a_prefix_of_another_is_shown_whole():
    shorten = short_ids(["abcdefghij", "abcdefghijk"])
    assert {shorten("abcdefghij"), shorten("abcdefghijk")} == {"abcdefghij", "abcdefghijk"}


def test_status_and_history_show_distinct_prefixes(make_service, heartbeat_dir: Path):
    first = make_service("deadbeef-1111", pid=101)
    second = make_service("deadbeef-2222", pid=102)
    first.claim("043")
    first.release("043")
    second.claim("043")
    root = heartbeat_dir.parent

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mcp_server_heartbeat", *args, "--dir", str(heartbeat_dir)],
            cwd=root,
            env=clean_env(root),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    status = cli("status")
    assert "deadbeef-1 " in status and "deadbeef-2 " in status
    history = cli("history", "043")
    assert "deadbeef-1 " in history and "deadbeef-2 " in history
    assert "deadbeef " not in status + history
