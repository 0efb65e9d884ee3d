"""The heartbeat directory read as plain JSON, all or nothing: ``status``'s table.

``status`` shows every session record and every held claim ledger. Validating
each file with pydantic (and importing pydantic at all) costs more than reading
the directory, so :func:`read_plain` reads the files as plain JSON and checks
their shape by hand, conservatively: a record or ledger passes only when the
store's models would read it the same way (the JSON types each field accepts,
timestamps in the one ISO 8601 form both parsers agree on). When anything is
not plainly well-formed (an unreadable or foreign file, a field of another
type, a name that is not an id, a missing directory, the lock held by a
process) it returns None, and the caller reads through the store, which
reports the file and why, as before. Reads only; never takes the lock; this
module imports nothing that loads pydantic.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from datetime import UTC, datetime

from ...domain.validation import is_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_FILE_BYTES = 1024 * 1024
"""A larger file is left to the store (which refuses it as too large)."""
PROC_LOCKS = "/proc/locks"

_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
"""Timestamps both ``datetime.fromisoformat`` and pydantic read the same way."""
_MATCH_TIME = _TIME.fullmatch
_INT_LIMIT = 2**63

_RECORD_STR = (
    "entrypoint",
    "agent_version",
    "plan_id",
    "branch",
    "cwd",
    "worktree",
    "last_activity",
    "role",
    "previous_session",
    "host",
    "end_reason",
    "boot_id",
    "pid_namespace",
    "time_namespace",
)
_RECORD_INT = ("pid", "pid_start_ticks", "client_pid", "fencing_token")
_RECORD_FLOAT = ("heartbeat_interval_s", "last_heartbeat_boottime")
_RECORD_TIME = (
    "started_at",
    "last_heartbeat",
    "last_call_at",
    "pid_started_at",
    "claimed_at",
    "adopted_at",
    "ended_at",
)
_LEDGER_STR = (
    "holder",
    "holder_host",
    "previous_holder",
    "release_reason",
    "holder_boot_id",
    "holder_pid_namespace",
)
_LEDGER_INT = ("holder_pid", "holder_pid_start_ticks")
_LEDGER_TIME = ("holder_pid_started_at", "claimed_at", "released_at")
_ACQUIRED_BY = (None, "claim", "takeover")
_TAKEOVER_REASONS = (None, "proof_of_death", "forced_stale", "holder_ended", "holder_missing")


def read_plain(
    directory: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """``(records, ledgers)`` of ``directory`` as plain dicts: the session
    records sorted by file name, the claim ledgers sorted by file name; or None
    when the store must read it (see the module doc). A file removed between
    the listing and its read is skipped, as the store does."""
    path = os.fspath(directory)
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    records = _read_all(path, _plain_record, session=True)
    if records is None:
        return None
    claims = os.path.join(path, "claims")
    try:
        claims_info = os.lstat(claims)
    except FileNotFoundError:
        ledgers: list[dict[str, Any]] | None = []
    except OSError:
        return None
    else:
        if not stat.S_ISDIR(claims_info.st_mode):
            return None
        ledgers = _read_all(claims, _plain_ledger, session=False)
    if ledgers is None or _locked(info.st_dev, info.st_ino):
        return None
    return records, ledgers


def _read_all(directory: str, plain: Any, session: bool) -> list[dict[str, Any]] | None:
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(directory)
            if entry.name.endswith(".json") and not entry.name.startswith(".")
        )
    except OSError:
        return None
    found = []
    for name in names:
        stem = name[: -len(".json")]
        if session and not is_id(stem):
            return None
        try:
            data = _read(os.path.join(directory, name))
        except FileNotFoundError:
            continue
        if data is None:
            return None
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict) or not plain(value):
            return None
        if session and value["session_id"] != stem:
            return None
        found.append(value)
    return found


def _read(path: str) -> bytes | None:
    """The bytes of a regular file (no link followed, never blocking); None when
    it is anything else or cannot be read. FileNotFoundError passes through."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        data = os.read(fd, info.st_size + 1)
        if len(data) <= info.st_size:  # a short read of a regular file: its end
            return data
        while len(data) <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1)):
            data += chunk
        return None if len(data) > MAX_FILE_BYTES else data
    except OSError:
        return None
    finally:
        os.close(fd)


def _locked(device: int, inode: int) -> bool:
    """True when ``/proc/locks`` shows a ``FLOCK`` on the directory (or cannot be
    read): the store then describes the holder (``status``'s lock-holder line)."""
    try:
        with open(PROC_LOCKS, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return os.path.exists("/proc/self")  # Linux without /proc/locks: ask the store
    suffix = f":{inode}"
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].endswith(suffix):
            return True
    return False


def _plain_record(record: dict[str, Any]) -> bool:
    """True when ``record`` is a session record the store reads field for field
    as this dict says (extra fields are kept by the store and ignored here)."""
    get = record.get
    if type(get("session_id")) is not str:
        return False
    if "schema_version" in record and not _is_int(record["schema_version"]):
        return False
    for name in _RECORD_STR:
        value = get(name)
        if value is not None and type(value) is not str:
            return False
    for name in _RECORD_INT:
        value = get(name)
        if value is not None and not _is_int(value):
            return False
    for name in _RECORD_FLOAT:
        if not _opt_float(get(name)):
            return False
    for name in _RECORD_TIME:
        value = get(name)
        if value is not None and not _is_time(value):
            return False
    tags = get("tags")
    if tags is not None and not isinstance(tags, dict):
        return False
    lost = get("claim_lost")
    return lost is None or _plain_claim_lost(lost)


def _plain_claim_lost(lost: Any) -> bool:
    return (
        isinstance(lost, dict)
        and isinstance(lost.get("plan_id"), str)
        and isinstance(lost.get("reason"), str)
        and "taken_by" in lost
        and _opt_str(lost["taken_by"])
        and "at" in lost
        and _opt_time(lost["at"])
        and _opt_int(lost.get("fencing_token"))
    )


def _plain_ledger(ledger: dict[str, Any]) -> bool:
    """True when ``ledger`` is a claim ledger the store reads as this dict says."""
    if not isinstance(ledger.get("plan_id"), str):
        return False
    token = ledger.get("fencing_token")
    if not _is_int(token) or token < 0:
        return False
    if "schema_version" in ledger and not _is_int(ledger["schema_version"]):
        return False
    if not all(_opt_str(ledger.get(name)) for name in _LEDGER_STR):
        return False
    if not all(_opt_int(ledger.get(name)) for name in _LEDGER_INT):
        return False
    if not all(_opt_time(ledger.get(name)) for name in _LEDGER_TIME):
        return False
    if ledger.get("acquired_by") not in _ACQUIRED_BY:
        return False
    if ledger.get("takeover_reason") not in _TAKEOVER_REASONS:
        return False
    waiters = ledger.get("waiters", [])
    return isinstance(waiters, list) and all(
        isinstance(w, dict)
        and isinstance(w.get("session_id"), str)
        and isinstance(w.get("since"), str)
        and _opt_time(w["since"])
        and isinstance(w.get("until"), str)
        and _opt_time(w["until"])
        for w in waiters
    )


def _is_int(value: Any) -> bool:
    return type(value) is int and -_INT_LIMIT < value < _INT_LIMIT


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _opt_int(value: Any) -> bool:
    return value is None or _is_int(value)


def _opt_float(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) < _INT_LIMIT


def _opt_time(value: Any) -> bool:
    return value is None or _is_time(value)


def _is_time(value: Any) -> bool:
    if type(value) is not str:
        return False
    if value in _GOOD_TIMES:  # a record's times often repeat (last call, heartbeat, claim)
        return True
    if _MATCH_TIME(value) is None:
        return False
    try:
        datetime.fromisoformat(value).astimezone(UTC)  # as the model normalises it
    except (ValueError, OverflowError):
        return False
    if len(_GOOD_TIMES) < _GOOD_TIMES_MAX:
        _GOOD_TIMES.add(value)
    return True


_GOOD_TIMES: set[str] = set()
_GOOD_TIMES_MAX = 65536


__all__ = ["read_plain"]
