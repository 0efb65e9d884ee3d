"""The project key: which repository a session belongs to in a shared store.

One PostgreSQL database serves many repositories; its rows are partitioned by
this key, so sessions of one repository on different machines share claims and
other repositories never see them. In order:

1. ``HEARTBEAT_PROJECT`` or ``session_tracking.project`` (``.ahrena/.directives``),
   taken as given (see :mod:`.config`);
2. the ``origin`` remote (else the first remote) normalised by
   :func:`normalise_remote`: credentials stripped, scheme, user and port dropped,
   ``git@host:path`` and ``https://host/path`` unified to ``host/path``, host
   lower-cased, ``.git`` and trailing slashes removed — so every clone and every
   worktree of one repository gets one key;
3. the repository's root commit (``git rev-list --max-parents=0 HEAD``; the
   smallest when there are several), ``root-commit:<sha>``, the same in every
   clone;
4. the root path, ``path:<root>``: a last resort, sessions on other machines
   will not share it.

With scope ``worktree`` a derived key ends ``#worktree=<path>``, so worktrees do
not share claims in a database either, as they do not in the directory.
Steps 2 and 4 read files only; step 3 runs ``git`` (with its timeout) and is
taken only when a PostgreSQL store is selected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .git import git_output
from .project import read_remote_url, strip_credentials
from .repository import find_git_dir

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^/@]+@)?(?P<host>[^:/@]+):(?P<path>(?!//).*)$", re.DOTALL)


def normalise_remote(url: str) -> str | None:
    """A remote URL as a project key, ``host/path`` (see module doc), or None when
    nothing is left of it.

    ``git@github.com:Acme/Shop.git``, ``https://user:tok@github.com/Acme/Shop``,
    ``ssh://git@GitHub.com:22/Acme/Shop.git/`` -> ``github.com/Acme/Shop``. A local
    path (``/srv/git/shop.git``, ``file:///srv/git/shop``) -> ``/srv/git/shop``.
    The path keeps its case (only the host is case-insensitive everywhere).
    """
    clean = strip_credentials(url.strip())
    host = ""
    if _SCHEME_RE.match(clean):
        rest = clean.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        authority = authority.rpartition("@")[2]  # a user part, if one was kept
        if authority.startswith("["):
            host = authority.partition("]")[0] + "]"
        else:
            host = authority.partition(":")[0]
        path = "/" + path if not host else path
    elif (scp := _SCP_RE.match(clean)) is not None:
        host, path = scp["host"], scp["path"]
    else:
        path = clean
    absolute = path.startswith("/") and not host
    parts = [part for part in path.split("/") if part]
    if parts:
        parts[-1] = parts[-1].removesuffix(".git")
    parts = [part for part in parts if part]
    if not parts and not host:
        return None
    joined = "/".join(parts)
    if host:
        return f"{host.lower()}/{joined}" if joined else host.lower()
    return f"/{joined}" if absolute else joined


def root_commit(root: Path) -> str | None:
    """The repository's root commit (the smallest hash when there are several),
    or None outside a repository, without commits, or when git fails or times out."""
    out = git_output(["rev-list", "--max-parents=0", "HEAD"], root)
    if out is None:
        return None
    commits = sorted(line.strip() for line in out.splitlines() if line.strip())
    return commits[0] if commits else None


def derive_project(
    root: Path,
    worktree: Path | None,
    per_worktree: bool,
    allow_git: bool,
    first_commit: Callable[[Path], str | None] = root_commit,
) -> tuple[str, str]:
    """The derived project key of the repository at ``root`` (steps 2-4 of the
    module doc) and where it came from, ``(key, source)``.

    Args:
        root: the coordination domain's root (absolute).
        worktree: the session's worktree, or None outside git.
        per_worktree: scope ``worktree``: the key names the worktree too.
        allow_git: whether step 3 may run ``git`` (only for a PostgreSQL store).
        first_commit: step 3 (tests inject one).
    """
    start = worktree or root
    found = find_git_dir(start)
    key: str | None = None
    source = ""
    if found is not None:
        remote = read_remote_url(found[2])
        if remote is not None and (key := normalise_remote(remote)) is not None:
            source = "git remote, normalised"
        elif allow_git and (sha := first_commit(start)) is not None:
            key, source = f"root-commit:{sha}", "git root commit"
    if key is None:
        key = f"path:{root}"
        source = "root path (last resort: sessions on other machines will not share it)"
    if per_worktree and worktree is not None:
        key, source = f"{key}#worktree={worktree}", f"{source}, per worktree (scope worktree)"
    return key, source


__all__ = ["derive_project", "normalise_remote", "root_commit"]
