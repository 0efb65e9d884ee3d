"""The pydantic-free frame of the hooks that run often: ``post-tool-use``,
``user-prompt-submit`` and ``subagent-start``.

Claude Code runs these on every tool call, every prompt and every dispatched
subagent, so they load neither ``mcp`` nor pydantic on their usual path. This
module gives them what :mod:`.hooks` gives the start and end hooks, in light
form: the payload read as plain JSON (:func:`read_payload`), the
configuration resolved from its ``cwd`` (:func:`config_of`), this
conversation's session records found in the light reader's dicts
(:func:`conversation_records`), a watchdog that turns every error into one
stderr line and exit code 0 (:func:`never_fail`), and the hook's JSON output
(:func:`print_context`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from ..domain.errors import HeartbeatError, InvalidInputError
from ..domain.liveness import Thresholds
from ..domain.validation import ID_MAX_CHARS, ID_PATTERN, id_refused
from ..host.config import Config, resolve_config
from ..host.identity import observer_here
from ..host.probe import ProcessProbe, probe_process
from ..session import readers
from .args import flags_of
from .watchdog import Deadline, deadline, disarm

PROG = "mcp-server-heartbeat hook"
DEADLINE_S = 3.0
"""A hook still running after this many seconds gives up (exit 0), as the start hook."""
MAX_PAYLOAD_BYTES = 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
_ID = re.compile(f"^{ID_PATTERN}$")


@dataclass(frozen=True)
class Payload:
    """The part of Claude Code's hook JSON these hooks use (other keys ignored)."""

    session_id: str
    cwd: str | None
    hook_event_name: str | None
    agent_id: str | None = None
    agent_type: str | None = None

    @property
    def directory(self) -> Path:
        """The payload's ``cwd`` when it is an existing absolute directory, else ours."""
        if self.cwd and os.path.isabs(self.cwd) and os.path.isdir(self.cwd):
            return Path(self.cwd)
        return Path.cwd()


def read_payload(stream: BinaryIO | None = None) -> Payload:
    """Claude Code's hook JSON from ``stream`` (default: stdin), read as plain JSON.

    Raises:
        InvalidInputError: no JSON object on stdin, larger than 1 MiB, or a
            missing or invalid ``session_id`` (the message says what is accepted).
    """
    if stream is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise InvalidInputError("expects Claude Code's hook JSON on stdin")
        stream = sys.stdin.buffer
    raw = stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(f"hook input larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        data = json.loads(raw.removeprefix(UTF8_BOM))
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"hook input is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("hook input must be a JSON object (Claude Code's hook JSON)")
    session_id = data.get("session_id")
    if session_id is None:
        raise InvalidInputError("hook input has no session_id (Claude Code's hook JSON)")
    if (
        not isinstance(session_id, str)
        or len(session_id) > ID_MAX_CHARS
        or not _ID.match(session_id)
    ):
        raise id_refused(session_id, "session_id")
    return Payload(
        session_id=session_id,
        cwd=_text(data.get("cwd")),
        hook_event_name=_text(data.get("hook_event_name")),
        agent_id=_text(data.get("agent_id")),
        agent_type=_text(data.get("agent_type")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def config_of(args: argparse.Namespace, payload: Payload) -> Config:
    """The configuration, resolved like the server's from the payload's ``cwd``
    (flags > environment > ``.ahrena/.directives`` > defaults).

    Raises:
        ConfigError: a bad setting.
    """
    flags = flags_of(args)._replace(session_id=None)
    return resolve_config(flags, os.environ, payload.directory)


def conversation_records(
    records: list[dict[str, Any]],
    session_id: str,
    now: datetime,
    thresholds: Thresholds,
    host: str,
    probe: ProcessProbe = probe_process,
    ancestors: Callable[[], frozenset[int]] | None = None,
) -> list[dict[str, Any]]:
    """The records of this conversation's sessions, as plain dicts: the payload's
    ``session_id``, the sessions that continue it under ``<id>-2``, ``<id>-3``, ...
    (their ``previous_session`` names it, transitively), and — when the id has no
    record of a running server (after ``/clear``) — the live server whose
    client is an ancestor of this hook (the status line's rule,
    :func:`~.statusline.line_for`).
    """
    from ..host.probe import ancestor_pids
    from .statusline import LightRecord, _conversation_server, _without_server

    by_id = {r.get("session_id"): r for r in records if isinstance(r.get("session_id"), str)}
    chosen: list[dict[str, Any]] = []
    pairs = ((sid, r.get("previous_session")) for sid, r in by_id.items())
    names = readers.continuation_ids(
        ((sid, previous if isinstance(previous, str) else None) for sid, previous in pairs),
        session_id,
    )
    chosen.extend(by_id[name] for name in sorted(names) if name in by_id)
    own = by_id.get(session_id)
    if own is None or _without_server(own):
        observer = observer_here(session_id, host)

        def status_of(record: Mapping[str, Any]) -> str:
            view = LightRecord.of(record)
            return readers.classify(view, now, observer, probe, thresholds).status

        server = _conversation_server(records, ancestors or ancestor_pids, host, status_of)
        if server is not None and server.get("session_id") not in names:
            chosen.append(server)
    return chosen


@contextmanager
def never_fail(event: str, seconds: float = DEADLINE_S) -> Iterator[None]:
    """Arm the watchdog (``seconds``, default :data:`DEADLINE_S`); turn every error
    into one stderr line. The hook's exit code stays 0: a hook must never break
    the session."""
    try:
        with deadline(seconds):
            yield
    except Deadline:
        print(f"{PROG} {event}: gave up after {seconds:g} s", file=sys.stderr)
    except HeartbeatError as exc:
        print(f"{PROG} {event}: {exc}", file=sys.stderr)
    except Exception as exc:
        print(f"{PROG} {event}: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)


def disarm_watchdog() -> None:
    """Stop :func:`never_fail`'s watchdog: what follows must run to its end (a
    notice recorded as told is printed)."""
    disarm()


def print_context(hook_event_name: str, text: str) -> None:
    """Print the hook's JSON output: ``{"hookSpecificOutput": {"hookEventName":
    <event>, "additionalContext": <text>}}`` (the shape Claude Code reads for
    PostToolUse, UserPromptSubmit and SubagentStart), one line on stdout."""
    output = {"hookSpecificOutput": {"hookEventName": hook_event_name, "additionalContext": text}}
    sys.stdout.write(json.dumps(output, ensure_ascii=False) + "\n")
    sys.stdout.flush()


__all__ = [
    "DEADLINE_S",
    "Payload",
    "config_of",
    "conversation_records",
    "disarm_watchdog",
    "never_fail",
    "print_context",
    "read_payload",
]
