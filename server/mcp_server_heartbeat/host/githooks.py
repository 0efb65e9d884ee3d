"""Installing the fenced-commit git hooks without clobbering anyone's.

``install_hooks`` writes one small ``/bin/sh`` script per hook into the
repository's hooks directory, found with ``git rev-parse --path-format=absolute
--git-path hooks``: that honours ``core.hooksPath`` and, in a linked worktree,
names the common git directory's hooks, so every worktree shares one set.

* **Chaining**: a hook already there (not ours) is renamed
  ``<hook>.before-heartbeat`` and our script runs it first, with the same
  arguments and standard input; when it fails, its exit code is the hook's
  (a failing user hook still fails the commit or push).
* **Idempotent**: our scripts carry :data:`MARKER`; installing again rewrites
  them in place and never chains our own script.
* **Uninstall**: our scripts are removed and the chained hooks renamed back.

The scripts call this very interpreter (``<python> -m mcp_server_heartbeat
git-hook <hook>``); when it is gone they say so on stderr and let the commit
through (after the chained hook).
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..domain.errors import InvalidInputError

HOOKS = ("prepare-commit-msg", "commit-msg", "pre-commit", "pre-push")
"""The hooks installed: the trailer (prepare-commit-msg, and commit-msg for a
message written in the editor) and the check (pre-commit, pre-push)."""
MARKER = "# installed by: mcp-server-heartbeat install-git-hooks"
CHAINED_SUFFIX = ".before-heartbeat"
PENDING_SUFFIX = ".heartbeat-pending"
"""Beside the message file: prepare-commit-msg found a claim and an empty message,
so commit-msg adds the trailer after the editor (and runs Python only then)."""
_STDIN_HOOKS = frozenset({"pre-push"})

_SCRIPT = """#!/bin/sh
{marker}
# Fenced commits (Heartbeat-Claim trailer, lost-claim check). Remove with:
#   mcp-server-heartbeat install-git-hooks --uninstall
hook={hook}
python={python}
chained="$(dirname "$0")/$hook{suffix}"
{body}"""

_BODY_PLAIN = """if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
if [ ! -x "$python" ]; then
    echo "heartbeat: $python is gone; $hook check skipped (run install-git-hooks again)" >&2
    exit 0
fi
exec "$python" -m mcp_server_heartbeat git-hook "$hook" "$@"
"""

_BODY_MSG = """if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
# Only when prepare-commit-msg found a claim but no message text yet (the editor
# was still to write it) is there anything left to add.
[ -e "$1{pending}" ] || exit 0
rm -f "$1{pending}"
if [ ! -x "$python" ]; then
    echo "heartbeat: $python is gone; $hook check skipped (run install-git-hooks again)" >&2
    exit 0
fi
exec "$python" -m mcp_server_heartbeat git-hook "$hook" "$@"
"""

_BODY_STDIN = """input=$(mktemp "${{TMPDIR:-/tmp}}/heartbeat-$hook.XXXXXX") || exit 1
trap 'rm -f "$input"' EXIT
cat > "$input"
if [ -x "$chained" ]; then
    "$chained" "$@" < "$input" || exit $?
fi
if [ ! -x "$python" ]; then
    echo "heartbeat: $python is gone; $hook check skipped (run install-git-hooks again)" >&2
    exit 0
fi
"$python" -m mcp_server_heartbeat git-hook "$hook" "$@" < "$input"
"""


@dataclass
class InstallReport:
    """What :func:`install_hooks` or :func:`uninstall_hooks` did, hook by hook."""

    hooks_dir: str
    installed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    chained: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)


def hooks_dir(cwd: Path) -> Path:
    """The hooks directory git runs hooks from, for the repository at ``cwd``.

    Raises:
        InvalidInputError: ``cwd`` is not inside a git repository.
    """
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-path", "hooks"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InvalidInputError(f"git could not be run in {cwd}: {exc}") from exc
    if done.returncode != 0 or not done.stdout.strip():
        raise InvalidInputError(
            f"{cwd} is not in a git repository (git rev-parse: {done.stderr.strip()})"
        )
    return Path(done.stdout.strip())


def is_ours(path: Path) -> bool:
    """True when ``path`` is a hook script this module wrote."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(400)
    except OSError:
        return False
    return MARKER in head


def script(hook: str, python: str | None = None) -> str:
    """The text of our ``hook`` script, calling ``python`` (default: this interpreter)."""
    if hook in _STDIN_HOOKS:
        body = _BODY_STDIN
    elif hook == "commit-msg":
        body = _BODY_MSG
    else:
        body = _BODY_PLAIN
    body = body.replace("{pending}", PENDING_SUFFIX)
    return _SCRIPT.format(
        marker=MARKER,
        hook=hook,
        python=shlex.quote(python or sys.executable),
        suffix=CHAINED_SUFFIX,
        body=body.replace("{{", "{").replace("}}", "}"),
    )


def install_hooks(cwd: Path, python: str | None = None) -> InstallReport:
    """Install (or refresh) our hooks for the repository at ``cwd`` (module doc).

    Raises:
        InvalidInputError: not a git repository, or a hook cannot be chained
            because ``<hook>.before-heartbeat`` already exists beside a foreign hook.
        OSError: the hooks directory cannot be written.
    """
    where = hooks_dir(cwd)
    where.mkdir(parents=True, exist_ok=True)
    report = InstallReport(str(where))
    for hook in HOOKS:
        path = where / hook
        chained = where / (hook + CHAINED_SUFFIX)
        if path.is_symlink() or path.exists():
            if is_ours(path):
                report.updated.append(hook)
            elif chained.exists() or chained.is_symlink():
                raise InvalidInputError(
                    f"{path} is not ours and {chained.name} already exists: move one of "
                    "them away, then install again"
                )
            else:
                os.rename(path, chained)
                report.chained.append(hook)
        else:
            report.installed.append(hook)
        _write_executable(path, script(hook, python))
    return report


def uninstall_hooks(cwd: Path) -> InstallReport:
    """Remove our hooks and put chained ones back (module doc).

    Raises:
        InvalidInputError: not a git repository.
    """
    where = hooks_dir(cwd)
    report = InstallReport(str(where))
    for hook in HOOKS:
        path = where / hook
        chained = where / (hook + CHAINED_SUFFIX)
        if not is_ours(path):
            if path.exists():
                report.left_alone.append(hook)
            continue
        path.unlink()
        report.removed.append(hook)
        if chained.exists() or chained.is_symlink():
            os.rename(chained, path)
            report.restored.append(hook)
    return report


def _write_executable(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.heartbeat-tmp")
    temp.write_text(text, encoding="utf-8")
    mode = temp.stat().st_mode
    temp.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(temp, path)


__all__ = [
    "CHAINED_SUFFIX",
    "HOOKS",
    "MARKER",
    "PENDING_SUFFIX",
    "InstallReport",
    "hooks_dir",
    "install_hooks",
    "is_ours",
    "script",
    "uninstall_hooks",
]
