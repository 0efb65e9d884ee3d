"""The status line's (and the loss hooks') reader of the PostgreSQL store:
session records, a plan's ledger and events as plain dicts, without pydantic
(see :class:`~..LightReader`).

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

    def claim(self, plan_id: str) -> dict[str, Any] | None:
        """The plan's claim ledger (its newest token's row) as a dict; None when
        never claimed or unreachable."""
        rows = self._select(
            "SELECT record FROM {s}.claims WHERE project = %s AND plan_id = %s "
            "ORDER BY fencing_token DESC LIMIT 1",
            [self._project, plan_id],
        )
        return rows[0] if rows else None

    def plan_events(self, plan_id: str, kinds: frozenset[str]) -> list[dict[str, Any]]:
        """The events of ``plan_id`` whose kind is in ``kinds``, oldest first, as
        dicts; [] when unreachable."""
        return self._select(
            "SELECT event FROM {s}.events WHERE project = %s AND plan_id = %s "
            "AND kind = ANY(%s) ORDER BY id",
            [self._project, plan_id, sorted(kinds)],
        )

    def _select(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        """The first column of each row of ``query`` (``{s}``: the schema) that is
        a JSON object; [] when the database or the schema is not there."""
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                rows = conn.execute(
                    sql.SQL(query).format(s=sql.Identifier(self._schema)),  # type: ignore[arg-type]
                    params,
                ).fetchall()
        except psycopg.Error:
            return []
        return [row[0] for row in rows if isinstance(row[0], dict)]

    def now(self) -> datetime:
        """The database's clock (aware UTC) as read with the last records (ages are
        judged by it, issue item 5); the local clock when it could not be read."""
        return self._db_now or datetime.now(UTC)


__all__ = ["LightPostgresReader"]
