"""The status line's reader of the PostgreSQL store: session records as plain
dicts, without pydantic (see :class:`~..LightReader`).

It opens one short connection per refresh (no pool), never writes, and
answers an empty list when the database or the schema is not there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .schema import check_schema_name

CONNECT_TIMEOUT_S = 2


class LightPostgresReader:
    """Session records of ``project`` from the store at ``url`` (schema ``schema``)."""

    def __init__(self, url: str, project: str, schema: str = "heartbeat") -> None:
        self._url = url
        self._project = project
        self._schema = check_schema_name(schema)
        self._db_now: datetime | None = None

    def session_records(self) -> list[dict[str, Any]]:
        """Every session record of the project as a dict; [] when unreachable."""
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                clock = conn.execute("SELECT clock_timestamp()").fetchone()
                self._db_now = clock[0].astimezone(UTC) if clock else None
                rows = conn.execute(
                    sql.SQL(
                        "SELECT record FROM {s}.sessions WHERE project = %s ORDER BY session_id"
                    ).format(s=sql.Identifier(self._schema)),
                    [self._project],
                ).fetchall()
        except psycopg.Error:
            return []
        return [row[0] for row in rows if isinstance(row[0], dict)]

    def now(self) -> datetime:
        """The database's clock (aware UTC) as read with the last records (ages are
        judged by it, issue item 5); the local clock when it could not be read."""
        return self._db_now or datetime.now(UTC)


__all__ = ["LightPostgresReader"]
