"""``status``'s table from plain JSON: the same table as through the store.

The table of a heartbeat directory is built without pydantic
(``cli.status.plain_snapshot`` over ``store.directory.plain.read_plain``);
the store's snapshot stays the reference. Each case builds a directory (the
observation world, then poisoned in one way), reads it both ways with one
"now" and one probe, and compares the rendered tables line for line; a file
the plain read cannot vouch for must send ``status`` to the store (which
names it as unreadable), so the tables still agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcp_server_heartbeat.cli.main import build_parser
from mcp_server_heartbeat.cli.status import plain_snapshot, render
from mcp_server_heartbeat.domain.liveness import Thresholds
from mcp_server_heartbeat.host.identity import observer_here
from mcp_server_heartbeat.host.probe import probe_process
from mcp_server_heartbeat.session.observe import read_snapshot
from mcp_server_heartbeat.store.directory.store import DirectoryStore
from observe_world import DURATION_S, IDS, build_world, real_pids
from test_import_paths import LIGHT, loaded_by, status_json

THRESHOLDS = Thresholds(stale_after=300.0, idle_after=600.0)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """The observation world under ``tmp_path/sessions``, its t=1000 s now."""
    start = datetime.now(UTC) - timedelta(seconds=DURATION_S)
    build_world(tmp_path / "sessions", start, real_pids())
    return tmp_path


def both_tables(
    root: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[list[str] | None, list[str]]:
    """(the table from plain JSON or None when it declines, the store's table)."""
    args = build_parser().parse_args(["status", "--root", str(root), "--dir", "sessions", *flags])
    env = env or {}
    now = datetime.now(UTC)
    plain = plain_snapshot(args, env, clock=lambda: now, probe=probe_process)
    store = DirectoryStore(root / "sessions")
    observer = observer_here(env.get("CLAUDE_CODE_SESSION_ID"))
    full = read_snapshot(store, now, observer, probe_process, THRESHOLDS, include_ended=args.all)
    expected = render(full, False, args.all)
    return (None if plain is None else render(plain, False, args.all)), expected


@pytest.mark.parametrize("flags", [(), ("--all",)])
def test_the_plain_table_is_the_stores_table(world: Path, flags: tuple[str, ...]) -> None:
    plain, expected = both_tables(world, *flags)
    assert plain is not None, "a clean directory is read as plain JSON"
    assert plain == expected


def test_the_callers_own_session_is_marked_the_same_way(world: Path) -> None:
    env = {"CLAUDE_CODE_SESSION_ID": _first_record(world).name[: -len(".json")]}
    plain, expected = both_tables(world, "--all", env=env)
    assert plain is not None and plain == expected
    assert any("(you)" in line for line in plain)


def _first_record(root: Path) -> Path:
    return sorted(p for p in (root / "sessions").glob("*.json") if not p.name.startswith("."))[0]


def _edit(field: str, value: object) -> Callable[[Path], None]:
    def poison(root: Path) -> None:
        path = _first_record(root)
        record = json.loads(path.read_text())
        record[field] = value
        path.write_text(json.dumps(record))

    return poison


def _ledger_edit(field: str, value: object) -> Callable[[Path], None]:
    def poison(root: Path) -> None:
        path = sorted((root / "sessions" / "claims").glob("*.json"))[0]
        ledger = json.loads(path.read_text())
        ledger[field] = value
        path.write_text(json.dumps(ledger))

    return poison


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda root: (root / "sessions" / name).write_bytes(data)


def _fifo(root: Path) -> None:
    os.mkfifo(root / "sessions" / "fifo.json")


def _link(root: Path) -> None:
    (root / "sessions" / "link.json").symlink_to(_first_record(root))


def _dir(root: Path) -> None:
    (root / "sessions" / "adir.json").mkdir()


def _claims_link(root: Path) -> None:
    claims = root / "sessions" / "claims"
    claims.rename(root / "elsewhere")
    claims.symlink_to(root / "elsewhere")


POISONS: dict[str, Callable[[Path], None]] = {
    "empty file": _write("empty.json", b""),
    "not JSON": _write("torn.json", b'{"session_id": "torn"'),
    "a JSON array": _write("array.json", b"[1, 2]"),
    "a name that is no id": _write("bad name!.json", b'{"session_id": "bad name!"}'),
    "session_id not the file name": _write("other.json", b'{"session_id": "another"}'),
    "a FIFO": _fifo,
    "a symbolic link": _link,
    "a directory": _dir,
    "pid as a string": _edit("pid", "12"),
    "pid as a float": _edit("pid", 12.0),
    "pid as a bool": _edit("pid", True),
    "a huge pid": _edit("pid", 10**30),
    "branch as a number": _edit("branch", 7),
    "a timestamp without offset": _edit("last_heartbeat", "2026-11-20T23:10:24"),
    "an impossible date": _edit("last_heartbeat", "2026-13-40T23:10:24Z"),
    "a timestamp as a number": _edit("started_at", 1_790_000_000),
    "a non-ASCII digit": _edit("started_at", "\uff12026-11-20T23:10:24Z"),
    "a timestamp past year 9999 in UTC": _edit("last_heartbeat", "9999-12-31T23:59:59-01:00"),
    "a timestamp before year 1 in UTC": _edit("started_at", "0001-01-01T00:00:00+01:00"),
    "tags as a list": _edit("tags", ["x"]),
    "claim_lost without its fields": _edit("claim_lost", {"plan_id": "x"}),
    "claim_lost not an object": _edit("claim_lost", "lost"),
    "schema_version null": _edit("schema_version", None),
    "boottime not finite": _edit("last_heartbeat_boottime", 1e400),
    "a ledger with a negative token": _ledger_edit("fencing_token", -1),
    "a ledger with an unknown takeover reason": _ledger_edit("takeover_reason", "luck"),
    "a ledger with a bad waiter": _ledger_edit("waiters", [{"session_id": "x"}]),
    "a torn ledger": lambda root: (root / "sessions" / "claims" / "zz.json").write_bytes(b"{"),
    "claims is a symbolic link": _claims_link,
}


@pytest.mark.parametrize("poison", POISONS.values(), ids=list(POISONS))
def test_a_file_it_cannot_vouch_for_goes_to_the_store(world: Path, poison) -> None:
    poison(world)
    plain, expected = both_tables(world, "--all")
    assert plain is None, "the plain read declines; the store reads and explains"
    assert expected  # the store's table (with its "unreadable:" lines) is what is shown


@pytest.mark.parametrize(
    "edit",
    [
        _edit("tags", {"anything": [1, {"x": None}]}),
        _edit("last_heartbeat", None),
        _edit("claim_lost", {"plan_id": "p", "taken_by": None, "at": None, "reason": "x"}),
        _edit("started_at", "2026-11-20T23:10:24.5+02:00"),
        _edit("an_extra_field", {"kept": True}),
    ],
    ids=["any tags", "never beaten", "claim lost", "an offset", "an extra field"],
)
def test_what_it_reads_it_reads_as_the_store_does(world: Path, edit) -> None:
    edit(world)
    plain, expected = both_tables(world, "--all")
    assert plain is not None
    assert plain == expected


def test_a_held_lock_goes_to_the_store_for_the_holder_line(world: Path) -> None:
    store = DirectoryStore(world / "sessions")
    with store.lock():
        plain, _ = both_tables(world)
    assert plain is None
    assert both_tables(world)[0] is not None


def test_a_missing_directory_goes_to_the_store(tmp_path: Path) -> None:
    plain, expected = both_tables(tmp_path)
    assert plain is None
    assert expected[-1] == "no sessions yet: the directory does not exist"


def test_a_database_store_goes_to_the_store(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["status", "--root", str(tmp_path), "--store", "postgresql://u@127.0.0.1:1/x"]
    )
    assert plain_snapshot(args, {}) is None


HEAVY = ("pydantic", "mcp", "pydantic_core", "anyio", "psycopg", "argparse", "logging")


def loaded_by_status(root: Path, *flags: str) -> tuple[str, set[str]]:
    """Run the entry point's ``status`` in a fresh interpreter: its stdout and
    the HEAVY modules it loaded."""
    argv = ["status", "--root", str(root), "--dir", "sessions", *flags]
    return loaded_by(argv, root, heavy=HEAVY)


def test_the_status_table_loads_neither_pydantic_nor_the_sdk(world: Path) -> None:
    out, loaded = loaded_by_status(world)
    assert "STATUS" in out  # the table was printed
    assert loaded == set(), f"status loaded {sorted(loaded)}"
    out, loaded = loaded_by_status(world, "--all")
    assert loaded == set(), f"status --all loaded {sorted(loaded)}"


def test_status_json_still_goes_through_the_models(world: Path) -> None:
    out, loaded = loaded_by_status(world, "--json")
    assert {"pydantic", "argparse"} <= loaded and "mcp" not in loaded
    assert json.loads(out)["exists"] is True


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["--all"],
        ["--dir", "x", "--all", "--root=/r", "--dir=y"],
        ["--all", "--all", "--scope", "worktree", "--session-id", "s-1"],
        ["--stale-after", "90", "--idle-after=30", "--interval", "5", "--store", "directory"],
    ],
)
def test_the_table_reads_its_flags_as_the_parser_does(words: list[str]) -> None:
    from mcp_server_heartbeat.cli.status import _flags, given_args

    parsed = build_parser().parse_args(["status", *words])
    given = given_args(words)
    assert given is not None
    assert (_flags(given), given.all, given.json) == (_flags(parsed), parsed.all, parsed.json)


@pytest.mark.parametrize(
    "words",
    [
        ["--json"],
        ["--al"],
        ["--all=1"],
        ["--dir"],
        ["--dir", "--all"],
        ["--scope", "nowhere"],
        ["--help"],
        ["extra"],
    ],
)
def test_anything_else_goes_to_the_parser(words: list[str]) -> None:
    from mcp_server_heartbeat.cli.status import given_args

    assert given_args(words) is None


def _reference_short_ids(session_ids: list[str | None]) -> Callable[[str | None], str]:
    """short_ids as first written: every neighbour compared character by character."""
    ids = sorted({sid for sid in session_ids if sid is not None})
    lengths: dict[str, int] = {}
    for index, sid in enumerate(ids):
        common = 0
        for neighbour in ids[max(0, index - 1) : index] + ids[index + 1 : index + 2]:
            shared = 0
            for a, b in zip(sid, neighbour, strict=False):
                if a != b:
                    break
                shared += 1
            common = max(common, shared)
        lengths[sid] = max(8, common + 1)
    fallback = max(lengths.values(), default=8)
    return lambda sid: "-" if sid is None else sid[: lengths.get(sid, fallback)]


def test_short_ids_are_those_of_the_character_by_character_rule() -> None:
    import random

    from mcp_server_heartbeat.session.shortids import short_ids

    rng = random.Random(13)
    for _ in range(200):
        ids: list[str | None] = [
            "".join(rng.choice("ab-1") for _ in range(rng.randint(1, 14)))
            for _ in range(rng.randint(0, 12))
        ]
        ids.append(None)
        fast, slow = short_ids(ids), _reference_short_ids(ids)
        for sid in [*ids, "abab", "zzzzzzzzzzzz"]:
            assert fast(sid) == slow(sid), (ids, sid)


def test_a_plain_table_is_the_painted_table_without_colour() -> None:
    from mcp_server_heartbeat.cli.common import paint, table

    headers = ["A", "LONGER", "C"]
    rows = [["x", "y", ""], ["a long cell", "", "z  "], ["", "b", "cc"]]
    expected_lines = [
        "  ".join(
            paint(h.ljust(w), "bold", False) for h, w in zip(headers, [11, 6, 3], strict=True)
        )
    ]
    for row in rows:
        expected_lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row, [11, 6, 3], strict=True)).rstrip()
        )
    assert table(headers, rows, None, False) == [line.rstrip() for line in expected_lines]
    assert table(headers, [], None, False) == ["A  LONGER  C"]


def test_the_status_table_loads_no_dataclasses_pathlib_socket_or_typing(world: Path) -> None:
    for flags in ((), ("--all",)):
        argv = ["status", "--root", str(world), "--dir", "sessions", *flags]
        out, loaded = loaded_by(argv, world, heavy=LIGHT)
        assert "STATUS" in out  # the table was printed
        assert loaded == set(), f"status {' '.join(flags)} loaded {sorted(loaded)}"


def test_the_status_line_of_a_session_loads_none_of_them_either(world: Path) -> None:
    payload = json.loads(status_json(world))
    payload["session_id"] = IDS["A"]  # active, holds 043 (token 2)
    argv = ["statusline", "--root", str(world), "--dir", "sessions"]
    out, loaded = loaded_by(argv, world, json.dumps(payload), heavy=LIGHT)
    assert out.startswith("♥ 043 #2 · beat ")  # its records were read and judged
    assert loaded == set(), f"the status line loaded {sorted(loaded)}"
