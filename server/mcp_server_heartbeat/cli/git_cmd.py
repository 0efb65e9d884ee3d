"""Fenced commits on the command line: ``git-hook HOOK``, ``verify [RANGE]`` and
``install-git-hooks [--uninstall]``.

* ``git-hook prepare-commit-msg FILE [SOURCE [SHA]]`` and ``git-hook commit-msg
  FILE`` add ``Heartbeat-Claim: <plan_id>#<fencing_token>`` for the committing
  session when it holds a plan (``git interpret-trailers --if-exists replace``:
  never twice; a message with no text yet is left alone so git still aborts an
  empty commit). A person outside any session: untouched.
* ``git-hook pre-commit`` and ``git-hook pre-push REMOTE URL`` refuse (exit 1,
  the reason on stderr) when the committing session's claim was lost: the
  plan's ledger has a later token held by another session
  (:func:`~mcp_server_heartbeat.domain.fencing.current_loss`). ``pre-push``
  also judges the trailers of the commits it pushes, as ``verify`` does.
* ``verify [RANGE]`` judges every commit of ``RANGE`` that carries the trailer
  (:func:`~mcp_server_heartbeat.domain.fencing.judge`). Exit 0 when none is
  refused, :data:`EXIT_REFUSED` when one is, 1 when the store or git cannot be
  read, 2 for a bad flag or range.

Git runs ``git-hook`` through :mod:`.git_fast`, which loads this module only
when a session may be committing (and holds the hook's watchdog). The hooks
import neither ``mcp`` nor the server, read the store without its lock, and
fail open: a store or git problem is one line on stderr and the commit goes on
(only a proven loss refuses).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..domain.errors import HeartbeatError, InvalidInputError, StoreError
from ..domain.fencing import (
    TRAILER_KEY,
    ClaimRef,
    Judgment,
    TokenEnd,
    current_loss,
    format_trailer,
    judge,
    loss_message,
    parse_claim,
    token_ends,
)
from ..domain.liveness import process_alive
from ..domain.models import SessionRecord
from ..host.config import Config, Flags, resolve_config
from ..host.git import git_run
from ..host.githooks import PENDING_SUFFIX
from ..host.identity import observer_here
from ..host.probe import ancestor_pids, probe_process
from ..session.committer import SESSION_ENV, claim_to_check, find_committer, held_claim
from ..store import Store, open_store
from . import EXIT_ERROR, EXIT_OK, EXIT_USAGE, PROG
from .args import flags_of

EXIT_REFUSED = 3
"""``verify``: a commit's claim was refused (lost or unknown token)."""
HOOK_EXIT_REFUSED = 1
"""A git hook's refusal (git aborts the commit or push on any non-zero code)."""
STORE_WAIT_S = 2.0
ZERO_SHA = "0" * 40
_FIELD = "\x1f"
_RECORD = "\x1e"


# -- finding the committing session -----------------------------------------------------


@dataclass
class Committing:
    """The store and the session making this commit (None: a person)."""

    config: Config
    store: Store
    session: SessionRecord | None


def committing(env: Mapping[str, str], cwd: Path, flags: Flags | None = None) -> Committing | None:
    """Resolve the configuration from ``cwd`` and find the committing session
    (:func:`~mcp_server_heartbeat.session.committer.find_committer`); None when
    session tracking is off or nothing was ever recorded.

    Raises:
        ConfigError, StoreError: the configuration or the store cannot be read.
    """
    config = resolve_config(flags or Flags(), env, cwd)
    if not config.enabled.value:
        return None
    store = open_store(config, lock_timeout=STORE_WAIT_S)
    if not store.exists():
        return None
    records, _unreadable = store.list_sessions()
    host = socket.gethostname()
    here = observer_here(None, host)

    def alive(record: SessionRecord) -> bool:
        return process_alive(record, here, probe_process) is True

    session = find_committer(records, env.get(SESSION_ENV), ancestor_pids(), host, alive)
    return Committing(config, store, session)


# -- the hooks ---------------------------------------------------------------------------


def add_trailer(message_file: Path, found: Committing | None, cwd: Path) -> str | None:
    """Add the committing session's trailer to ``message_file``; the trailer
    written, or None (no session, no claim, or no message text yet)."""
    if found is None or found.session is None:
        return None
    claim = held_claim(found.session)
    if claim is None:
        return None
    if not _has_text(message_file):
        # the editor has yet to write it: the installed commit-msg hook adds it then
        _touch(message_file.with_name(message_file.name + PENDING_SUFFIX))
        return None
    trailer = format_trailer(claim.plan_id, claim.token)
    done = git_run(
        [
            "interpret-trailers",
            "--in-place",
            "--if-exists",
            "replace",
            "--trailer",
            trailer,
            str(message_file),
        ],
        cwd,
    )
    if done is None or done.returncode != 0:
        raise StoreError(f"git interpret-trailers failed: {done.stderr.strip() if done else ''}")
    with suppress(OSError):
        message_file.with_name(message_file.name + PENDING_SUFFIX).unlink(missing_ok=True)
    return trailer


def _touch(path: Path) -> None:
    with suppress(OSError):
        path.touch()


def _has_text(message_file: Path) -> bool:
    """True when the message has a line that is neither blank nor a comment."""
    try:
        text = message_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.strip() and not line.startswith("#") for line in text.splitlines())


def check_session(found: Committing | None, what: str) -> str | None:
    """The refusal text when the committing session's claim was lost; None otherwise."""
    if found is None or found.session is None:
        return None
    claim = claim_to_check(found.session)
    if claim is None:
        return None
    loss = current_loss([found.session.session_id], claim, found.store.read_claim(claim.plan_id))
    return None if loss is None else loss_message(loss, what)


def run_git_hook(args: argparse.Namespace) -> int:
    """``git-hook HOOK [ARGS...]`` once :mod:`.git_fast` found that a session may
    be committing (see module doc); the caller holds the watchdog."""
    return _run_hook(args.git_hook, list(args.hook_args), Path.cwd(), args)


def _run_hook(hook: str, extra: list[str], cwd: Path, args: argparse.Namespace) -> int:
    try:
        found = committing(os.environ, cwd, flags_of(args))
        if hook in ("prepare-commit-msg", "commit-msg"):
            if not extra:
                extra = [os.environ.get("PRE_COMMIT_COMMIT_MSG_FILENAME", "")]
            if extra[0]:
                add_trailer(Path(extra[0]), found, cwd)
            return EXIT_OK
        what = "push" if hook == "pre-push" else "commit"
        refusal = check_session(found, what)
        if refusal is None and hook == "pre-push" and found is not None:
            refusal = _check_pushed(found, extra, cwd)
    except HeartbeatError as exc:
        print(f"heartbeat {hook}: {exc} (check skipped)", file=sys.stderr)
        return EXIT_OK
    except Exception as exc:  # fail open: a broken check never blocks work
        print(f"heartbeat {hook}: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_OK
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return HOOK_EXIT_REFUSED
    return EXIT_OK


def _check_pushed(found: Committing, extra: list[str], cwd: Path) -> str | None:
    """Judge the trailers of the commits being pushed; the refusal text or None."""
    remote = extra[0] if extra else os.environ.get("PRE_COMMIT_REMOTE_NAME", "")
    ranges: list[list[str]] = []
    if sys.stdin is not None and not sys.stdin.isatty():
        for line in sys.stdin.read().splitlines():
            parts = line.split()
            if len(parts) != 4 or parts[1] == ZERO_SHA:
                continue
            local, remote_sha = parts[1], parts[3]
            if remote_sha != ZERO_SHA and _known(remote_sha, cwd):
                ranges.append([f"{remote_sha}..{local}"])
            else:
                ranges.append([local, "--not", f"--remotes={remote}" if remote else "--remotes"])
    start, end = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if not ranges and start and end:
        ranges.append([f"{start}..{end}"])
    results: list[CommitVerdict] = []
    for rev in ranges:
        results.extend(verify_commits(found.store, read_commits(rev, cwd)))
    # A hook refuses only a proven loss. A token this store does not know
    # (``unknown``: e.g. a colleague's commit claimed in another clone's
    # directory) is reported and let through; ``verify`` still refuses it.
    unknown = [result for result in results if result.judgment.status == "unknown"]
    for result in unknown:
        print(
            f"heartbeat pre-push: {result.commit[:12]} {result.claim}: {result.judgment.reason} "
            "(not refused: this store cannot judge it)",
            file=sys.stderr,
        )
    refused = [result for result in results if result.judgment.status == "lost"]
    if not refused:
        return None
    lines = [f"heartbeat: push refused: {len(refused)} commit(s) carry a lost {TRAILER_KEY}:"]
    lines += [f"  {r.commit[:12]} {r.claim}: {r.judgment.reason}" for r in refused]
    lines.append("Rewrite them under your current claim, or push with --no-verify if agreed.")
    return "\n".join(lines)


def _known(sha: str, cwd: Path) -> bool:
    done = git_run(["cat-file", "-e", f"{sha}^{{commit}}"], cwd)
    return done is not None and done.returncode == 0


# -- verify ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """A commit and the claim values its trailers name."""

    sha: str
    committed_at: datetime
    authored_at: datetime
    claims: list[str]


@dataclass(frozen=True)
class CommitVerdict:
    """One commit's claim and its judgment."""

    commit: str
    claim: str
    at: datetime
    judgment: Judgment

    def as_json(self) -> dict[str, Any]:
        """Stable JSON fields: commit, claim, at (UTC), status, reason."""
        return {
            "commit": self.commit,
            "claim": self.claim,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "status": self.judgment.status,
            "reason": self.judgment.reason,
        }


def read_commits(rev: list[str], cwd: Path) -> list[Commit]:
    """The commits of ``rev`` (``git log`` arguments) with their trailer values.

    Raises:
        InvalidInputError: git refused the range (its message is included).
        StoreError: git could not be run.
    """
    fmt = (
        f"%H{_FIELD}%ct{_FIELD}%at{_FIELD}"
        f"%(trailers:key={TRAILER_KEY},valueonly,separator=%x1f){_RECORD}"
    )
    done = git_run(["log", f"--format={fmt}", *rev, "--"], cwd, timeout=120)
    if done is None:
        raise StoreError("git log could not be run")
    if done.returncode != 0:
        raise InvalidInputError(f"git log {' '.join(rev)}: {done.stderr.strip()}")
    commits = []
    for chunk in done.stdout.split(_RECORD):
        fields = chunk.strip("\n").split(_FIELD)
        if len(fields) < 3 or not fields[0]:
            continue
        values = [value.strip() for value in fields[3:] if value.strip()]
        commits.append(
            Commit(
                sha=fields[0],
                committed_at=datetime.fromtimestamp(int(fields[1]), UTC),
                authored_at=datetime.fromtimestamp(int(fields[2]), UTC),
                claims=values,
            )
        )
    return commits


def verify_commits(store: Store, commits: list[Commit], by: str = "author") -> list[CommitVerdict]:
    """Judge every claim of ``commits`` against ``store`` (``by``: which of the
    commit's times is "when the commit was made": committer or author)."""
    plans: dict[str, tuple[int | None, dict[int, TokenEnd]]] = {}
    verdicts = []
    for commit in commits:
        moment = commit.committed_at if by == "committer" else commit.authored_at
        for value in commit.claims:
            try:
                claim: ClaimRef = parse_claim(value)
            except InvalidInputError as exc:
                verdicts.append(
                    CommitVerdict(commit.sha, value, moment, Judgment("unknown", str(exc)))
                )
                continue
            if claim.plan_id not in plans:
                ledger = store.read_claim(claim.plan_id)
                ends = token_ends(store.plan_history(claim.plan_id, None))
                plans[claim.plan_id] = (None if ledger is None else ledger.fencing_token, ends)
            token, ends = plans[claim.plan_id]
            verdicts.append(
                CommitVerdict(commit.sha, str(claim), moment, judge(claim, moment, token, ends))
            )
    return verdicts


def default_range(cwd: Path) -> str:
    """``@{upstream}..HEAD`` when the branch has an upstream, else ``HEAD`` (all of
    its history)."""
    done = git_run(["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"], cwd)
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return "@{upstream}..HEAD"
    return "HEAD"


def run_verify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``verify [RANGE] [--json] [--time committer|author]`` (module doc)."""
    stream = out or sys.stdout
    cwd = Path.cwd()
    try:
        rev = args.range or default_range(cwd)
        if rev.startswith("-"):
            raise InvalidInputError(f"RANGE {rev!r} is not accepted: give a revision range")
        config = resolve_config(flags_of(args), os.environ, cwd)
        store = open_store(config)
        commits = read_commits([rev], cwd)
        verdicts = verify_commits(store, commits, args.time)
    except InvalidInputError as exc:
        print(f"{PROG} verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HeartbeatError as exc:
        print(f"{PROG} verify: {exc}", file=sys.stderr)
        return EXIT_USAGE if type(exc).__name__ == "ConfigError" else EXIT_ERROR
    refused = [v for v in verdicts if v.judgment.refused]
    claimed = {v.commit for v in verdicts}
    if args.json:
        payload = {
            "range": rev,
            "store": store.location,
            "time": args.time,
            "commits": len(commits),
            "with_claim": len(claimed),
            "refused": len(refused),
            "claims": [v.as_json() for v in verdicts],
        }
        stream.write(json.dumps(payload, indent=2) + "\n")
    else:
        for verdict in verdicts:
            stream.write(
                f"{verdict.commit[:12]}  {verdict.claim:<14} {verdict.judgment.status:<10} "
                f"{verdict.judgment.reason}\n"
            )
        stream.write(
            f"{len(commits)} commit(s) in {rev}, {len(claimed)} with a {TRAILER_KEY}, "
            f"{len(refused)} refused ({store.location})\n"
        )
    return EXIT_REFUSED if refused else EXIT_OK


# -- install-git-hooks -------------------------------------------------------------------


def run_install(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``install-git-hooks [--uninstall]``: see :mod:`~mcp_server_heartbeat.host.githooks`."""
    from ..host.githooks import install_hooks, uninstall_hooks

    stream = out or sys.stdout
    try:
        report = uninstall_hooks(Path.cwd()) if args.uninstall else install_hooks(Path.cwd())
    except InvalidInputError as exc:
        print(f"{PROG} install-git-hooks: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"{PROG} install-git-hooks: {exc}", file=sys.stderr)
        return EXIT_ERROR
    lines = [f"hooks directory: {report.hooks_dir}"]
    for label, names in (
        ("installed", report.installed),
        ("updated", report.updated),
        ("installed, chaining the existing hook", report.chained),
        ("removed", report.removed),
        ("restored the chained hook", report.restored),
        ("not ours, left alone", report.left_alone),
    ):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    stream.write("\n".join(lines) + "\n")
    return EXIT_OK


__all__ = [
    "EXIT_REFUSED",
    "Commit",
    "CommitVerdict",
    "Committing",
    "add_trailer",
    "check_session",
    "committing",
    "default_range",
    "read_commits",
    "run_git_hook",
    "run_install",
    "run_verify",
    "verify_commits",
]
