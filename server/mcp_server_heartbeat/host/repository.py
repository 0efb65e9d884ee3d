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
``git``, so the hooks and the status line stay cheap; for them the same answers
come as strings (:func:`repository_dirs`, :func:`git_dirs`), without ``pathlib``.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

from .paths import and_parents, is_dir, is_file, normal, resolve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

MAX_SMALL_FILE_BYTES = 256 * 1024
"""Git files and manifests larger than this (256 KiB) are not read."""

MAX_PARENT_WALK = 64
"""How many directories :func:`find_git_dir` climbs at most."""

_CORE = r"^\s*\[\s*core\s*\]\s*$"
_SECTION = r"^\s*\["
_KEY = r"^\s*(?P<key>bare|worktree)\s*=\s*(?P<value>.*?)\s*$"
_TRUE = {"true", "yes", "on", "1"}


class Repository(namedtuple("Repository", ("root", "worktree", "bare"), defaults=(False,))):
    """Where a path sits in git. Immutable (a named tuple).

    Attributes:
        root: the coordination domain's root (absolute): the main working
            tree, or the bare repository's directory.
        worktree: the top level of the working tree containing the path
            (absolute), the main one or a linked one.
        bare: True when ``root`` is a bare repository.
    """

    __slots__ = ()


def find_git_dir(start: Path) -> tuple[Path, Path, Path] | None:
    """``(work tree, git dir, common dir)`` of the repository containing ``start``.

    ``.git`` as a directory: all three are plain. ``.git`` as a file
    (``gitdir: <path>``, relative to the work tree): the git dir is that path,
    and the common dir is named by its ``commondir`` file (worktrees) or is
    the git dir itself (submodules). None outside a repository or when the
    files are unreadable. (:func:`git_dirs` with paths.)
    """
    from pathlib import Path

    found = git_dirs(os.fspath(start))
    return None if found is None else (Path(found[0]), Path(found[1]), Path(found[2]))


def git_dirs(start: str) -> tuple[str, str, str] | None:
    """:func:`find_git_dir` with paths as strings, as ``str(path)`` gives them,
    without ``pathlib`` (the status line and ``status`` resolve their
    configuration through it)."""
    here = resolve(start)
    for candidate in and_parents(here, MAX_PARENT_WALK):
        dot_git = os.path.join(candidate, ".git")
        try:
            if is_dir(dot_git):
                return candidate, dot_git, dot_git
            if not is_file(dot_git):
                continue
            text = read_small(dot_git)
        except OSError:
            return None
        if text is None or not text.startswith("gitdir:"):
            return None
        git_dir = normal(text[len("gitdir:") :].strip())
        if not os.path.isabs(git_dir):
            git_dir = resolve(os.path.join(candidate, git_dir))
        common = git_dir
        pointer = read_small(os.path.join(git_dir, "commondir"))
        if pointer and pointer.strip():
            common = normal(pointer.strip())
            if not os.path.isabs(common):
                common = resolve(os.path.join(git_dir, common))
        return candidate, git_dir, common
    return None


def read_small(path: str | os.PathLike[str]) -> str | None:
    """The text of a regular file of at most :data:`MAX_SMALL_FILE_BYTES`, or None."""
    try:
        if not is_file(path) or os.stat(path).st_size > MAX_SMALL_FILE_BYTES:
            return None
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def find_repository(start: Path) -> Repository | None:
    """The repository containing ``start`` (see module doc), or None outside one.

    Never raises: unreadable git files give the nearest answer that is safe
    (the worktree itself as root), never another repository. (:func:`repository_dirs`
    with paths.)
    """
    from pathlib import Path

    found = repository_dirs(os.fspath(start))
    if found is None:
        return None
    root, worktree, bare = found
    return Repository(root=Path(root), worktree=Path(worktree), bare=bare)


def repository_dirs(start: str) -> tuple[str, str, bool] | None:
    """:func:`find_repository` as ``(root, worktree, bare)``, the paths as strings
    (as ``str(path)`` gives them), without ``pathlib``; None outside a repository."""
    found = git_dirs(start)
    if found is None:
        return None
    work_tree, git_dir, common = found
    if not (is_dir(git_dir) and is_dir(common)):
        # A linked worktree whose administrative directory was pruned (or a .git file
        # naming nothing): never place the heartbeat directory inside a git directory
        # that does not exist (``prepare`` would create it there, and the next
        # ``git worktree prune`` would delete it with its claim ledgers).
        return work_tree, work_tree, False
    if os.path.basename(common) == ".git":
        # A normal repository: the main working tree is the directory holding .git.
        main = os.path.dirname(common)
        return (main if is_dir(os.path.join(main, ".git")) else work_tree), work_tree, False
    core = _core_settings(common)
    if core.get("bare", "").lower() in _TRUE:
        return common, work_tree, True
    if core.get("worktree"):
        checkout = normal(core["worktree"])
        if not os.path.isabs(checkout):
            checkout = resolve(os.path.join(common, checkout))
        if is_dir(checkout):
            return checkout, work_tree, False
    return common, work_tree, False


def _core_settings(common: str) -> dict[str, str]:
    """``core.bare`` and ``core.worktree`` of ``<common>/config`` (lower-case keys)."""
    text = read_small(os.path.join(common, "config"))
    found: dict[str, str] = {}
    if text is None:
        return found
    in_core = False
    for line in text.splitlines():
        if re.match(_SECTION, line):
            in_core = bool(re.match(_CORE, line, re.IGNORECASE))
            continue
        if in_core and (match := re.match(_KEY, line, re.IGNORECASE)):
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
    "git_dirs",
    "read_small",
    "repository_dirs",
]
