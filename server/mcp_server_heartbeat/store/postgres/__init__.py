"""The PostgreSQL store (team mode): sessions on many machines, one database.

``PostgresStore`` is imported lazily so that importing this package (or the
store seam) never loads psycopg; only opening a ``postgresql://`` store does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import PostgresStore


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from .store import PostgresStore

        return PostgresStore
    raise AttributeError(name)


__all__ = ["PostgresStore"]
