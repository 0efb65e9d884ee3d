"""Short session ids for people: git-style prefixes that never collide.

Shared by ``status``'s table and the Session Trace; no pydantic here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

SHORT_ID_CHARS = 8


def short_id(session_id: str | None) -> str:
    """The first 8 characters of a session id (as in git's short hashes); '-' for None.
    Where several ids are shown together, use :func:`short_ids`, which never collides."""
    return "-" if session_id is None else session_id[:SHORT_ID_CHARS]


def short_ids(session_ids: Iterable[str | None]) -> Callable[[str | None], str]:
    """Shorteners for ids shown together: each id's prefix is lengthened beyond 8
    characters until no other id of ``session_ids`` shares it, as git does for
    short hashes. The returned function maps an id to its prefix ('-' for None;
    an id not in the set gets the longest length needed, at least 8)."""
    ids = sorted({sid for sid in session_ids if sid is not None})
    lengths: dict[str, int] = {}
    for index, sid in enumerate(ids):
        common = 0
        head = sid[:SHORT_ID_CHARS]
        for neighbour in ids[max(0, index - 1) : index] + ids[index + 1 : index + 2]:
            if neighbour[:SHORT_ID_CHARS] != head:
                continue  # they differ within 8 characters: 8 are enough
            shared = 0
            for a, b in zip(sid, neighbour, strict=False):
                if a != b:
                    break
                shared += 1
            common = max(common, shared)
        lengths[sid] = max(SHORT_ID_CHARS, common + 1)
    fallback = max(lengths.values(), default=SHORT_ID_CHARS)

    def shorten(session_id: str | None) -> str:
        if session_id is None:
            return "-"
        return session_id[: lengths.get(session_id, fallback)]

    return shorten


__all__ = ["SHORT_ID_CHARS", "short_id", "short_ids"]
