"""Which repository a path belongs to: the coordination domain of the directory store.

Every worktree and every subdirectory of one repository must share one
heartbeat directory, or two sessions in two worktrees both get plan ``043``.
So a launch directory (``--root``, ``CLAUDE_PROJECT_DIR`` or the working
directory) is normalised to the repository's **root**:

* in the main checkout or any of its subdirectories: the main working tree;
* in a linked worktree (``git worktree add``): the main working tree, found
  through the common git directory (``<worktree>/.git`` names
  ``<main>/.git/worktrees/<name>``, whose ``commondir`` names ``<main>/.git``);
* in a linked worktree of a **bare** repository: the bare repository's own
  directory (it has no main working tree; it is the one place every worktree
  shares, and git ignores a directory it does not know there);
* in a submodule: its checkout (``core.worktree`` of its git directory);
* in a repository whose git directory lives elsewhere
  (``git init --separate-git-dir``): that git directory, from the main
  checkout and from every linked worktree alike (git itself records no main
  working tree there: ``git worktree list`` names the git directory);
* outside any repository: the launch directory itself.

The session's **worktree** (the top level of the checkout it works in) is
reported beside the root. Found from the repository's files, without running
``git``, so the hooks and the status line stay cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_SMALL_FILE_BYTES = 256 * 1024
"""Git files and manifests larger than this (256 KiB) are not read."""

MAX_PARENT_WALK = 64
"""How many directories :func:`find_git_dir` climbs at most."""

_CORE_RE = re.compile(r"^\s*\[\s*core\s*\]\s*$", re.IGNORECASE)
_SECTION_RE = re.compile(r"^\s*\[")
_KEY_RE = re.compile(r"^\s*(?P<key>bare|worktree)\s*=\s*(?P<value>.*?)\s*$", re.IGNORECASE)
_TRUE = {"true", "yes", "on", "1"}


@dataclass(frozen=True)
class Repository:
    """Where a path sits in git.

    Attributes:
        root: the coordination domain's root (absolute): the main working
            tree, or the bare repository's directory.
        worktree: the top level of the working tree containing the path
            (absolute), the main one or a linked one.
        bare: True when ``root`` is a bare repository.
    """

    root: Path
    worktree: Path
    bare: bool = False


def find_git_dir(start: Path) -> tuple[Path, Path, Path] | None:
    """``(work tree, git dir, common dir)`` of the repository containing ``start``.

    ``.git`` as a directory: all three are plain. ``.git`` as a file
    (``gitdir: <path>``, relative to the work tree): the git dir is that path,
    and the common dir is named by its ``commondir`` file (worktrees) or is
    the git dir itself (submodules). None outside a repository or when the
    files are unreadable.
    """
    here = start.resolve()
    for candidate in [here, *here.parents][:MAX_PARENT_WALK]:
        dot_git = candidate / ".git"
        try:
            if dot_git.is_dir():
                return candidate, dot_git, dot_git
            if not dot_git.is_file():
                continue
            text = read_small(dot_git)
        except OSError:
            return None
        if text is None or not text.startswith("gitdir:"):
            return None
        git_dir = Path(text[len("gitdir:") :].strip())
        if not git_dir.is_absolute():
            git_dir = (candidate / git_dir).resolve()
        common = git_dir
        pointer = read_small(git_dir / "commondir")
        if pointer and pointer.strip():
            common = Path(pointer.strip())
            if not common.is_absolute():
                common = (git_dir / common).resolve()
        return candidate, git_dir, common
    return None


def read_small(path: Path) -> str | None:
    """The text of a regular file of at most :data:`MAX_SMALL_FILE_BYTES`, or None."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_SMALL_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def find_repository(start: Path) -> Repository | None:
    """The repository containing ``start`` (see module doc), or None outside one.

    Never raises: unreadable git files give the nearest answer that is safe
    (the worktree itself as root), never another repository.
    """
    found = find_git_dir(start)
    if found is None:
        return None
    work_tree, git_dir, common = found
    if not (git_dir.is_dir() and common.is_dir()):
        # A linked worktree whose administrative directory was pruned (or a .git file
        # naming nothing): never place the heartbeat directory inside a git directory
        # that does not exist (``prepare`` would create it there, and the next
        # ``git worktree prune`` would delete it with its claim ledgers).
        return Repository(root=work_tree, worktree=work_tree)
    if common.name == ".git":
        # A normal repository: the main working tree is the directory holding .git.
        main = common.parent
        return Repository(root=main if (main / ".git").is_dir() else work_tree, worktree=work_tree)
    core = _core_settings(common)
    if core.get("bare", "").lower() in _TRUE:
        return Repository(root=common, worktree=work_tree, bare=True)
    if core.get("worktree"):
        checkout = Path(core["worktree"])
        checkout = checkout if checkout.is_absolute() else (common / checkout).resolve()
        if checkout.is_dir():
            return Repository(root=checkout, worktree=work_tree)
    return Repository(root=common, worktree=work_tree)


def _core_settings(common: Path) -> dict[str, str]:
    """``core.bare`` and ``core.worktree`` of ``<common>/config`` (lower-case keys)."""
    text = read_small(common / "config")
    found: dict[str, str] = {}
    if text is None:
        return found
    in_core = False
    for line in text.splitlines():
        if _SECTION_RE.match(line):
            in_core = bool(_CORE_RE.match(line))
            continue
        if in_core and (match := _KEY_RE.match(line)):
            value = match["value"]
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.setdefault(match["key"].lower(), value)
    return found


__all__ = [
    "MAX_PARENT_WALK",
    "MAX_SMALL_FILE_BYTES",
    "Repository",
    "find_git_dir",
    "find_repository",
    "read_small",
]
