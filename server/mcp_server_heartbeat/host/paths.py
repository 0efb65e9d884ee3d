"""``pathlib``'s answers on strings, for the commands that run on every prompt.

The configuration of the status line, ``status`` and the hooks is resolved
from paths (:mod:`.config`, :mod:`.repository`), and importing ``pathlib``
(with ``urllib.parse`` and ``ipaddress`` behind it) costs those commands more
than their work. These functions give what the ``Path`` methods they replace
give, as strings, so a value shown (a setting, an error) is the same either way.
"""

from __future__ import annotations

import errno
import os
import stat

_IGNORED_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
"""The errors ``Path.is_dir``/``Path.is_file`` answer False for; others raise."""


def normal(path: str) -> str:
    """``str(Path(path))``: empty and ``.`` parts and trailing slashes dropped, two
    leading slashes kept (POSIX leaves their meaning to the system), more made
    one; ``..`` kept; ``.`` for an empty path."""
    stripped = path.lstrip("/")
    lead = len(path) - len(stripped)
    root = "//" if lead == 2 else "/" if lead else ""
    return root + "/".join(part for part in stripped.split("/") if part and part != ".") or "."


def resolve(path: str) -> str:
    """``str(Path(path).resolve())``: the real path (symbolic links followed,
    ``..`` applied, relative to the working directory).

    Raises:
        RuntimeError: a symbolic-link loop, as ``pathlib`` raises it.
    """
    real = os.path.realpath(path)
    try:
        os.stat(real)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RuntimeError(f"Symlink loop from {exc.filename!r}") from None
    return real


def and_parents(path: str, limit: int) -> list[str]:
    """``[Path(path), *Path(path).parents][:limit]`` of a normal ``path``
    (:func:`normal` or :func:`resolve` made it), as strings."""
    found = [path]
    while len(found) < limit and (parent := os.path.dirname(path)) != path:
        found.append(parent)
        path = parent
    return found


def is_dir(path: str | os.PathLike[str]) -> bool:
    """``Path(path).is_dir()``: False when missing or not a directory (or a
    symbolic-link loop, or a name the system cannot take).

    Raises:
        OSError: any other error of ``stat`` (e.g. no permission), as ``pathlib``.
    """
    return _mode_is(path, stat.S_ISDIR)


def is_file(path: str | os.PathLike[str]) -> bool:
    """``Path(path).is_file()``: a regular file, with :func:`is_dir`'s errors."""
    return _mode_is(path, stat.S_ISREG)


def _mode_is(path: str | os.PathLike[str], kind: object) -> bool:
    try:
        return kind(os.stat(path).st_mode)  # type: ignore[operator,no-any-return]
    except OSError as exc:
        if exc.errno not in _IGNORED_ERRNOS:
            raise
        return False
    except ValueError:
        return False


__all__ = ["and_parents", "is_dir", "is_file", "normal", "resolve"]
