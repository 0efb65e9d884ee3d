"""The PostgreSQL store's unit of work: one database transaction on one connection.

:class:`PostgresTransaction` is a :class:`~..buffered.BufferedTransaction`
whose committed state is read through the SAME connection, inside the same
database transaction (so it sees exactly what that transaction may change).
Reading a claim locks the plan's counter row (``SELECT ... FOR UPDATE``):
two claimants of one plan serialise on that row even without the store's
advisory lock. :meth:`PostgresTransaction.commit` writes the buffered claims
(the counter raised, never lowered; the previous lease closed), session records
and events; the database commits them all at once or not at all. Each claim
change also sends a NOTIFY on :func:`claims_channel`: a wake-up hint for
waiters, delivered only when the transaction commits, never the truth.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ...domain.errors import StoreError
from ...domain.models import ClaimRecord, Event, SessionRecord
from ..buffered import BufferedTransaction
from ..names import safe_stem

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql


class PostgresStore(Protocol):
    """What a transaction uses of :class:`~.store.PostgresStore`: its project key,
    its address for messages, schema-qualified SQL and reads on a given connection."""

    project: str
    schema: str

    @property
    def location(self) -> str: ...
    def _q(self, text: str) -> sql.Composed: ...
    def _now_on(self, conn: psycopg.Connection) -> datetime: ...
    def _read_session_on(
        self, conn: psycopg.Connection, session_id: str
    ) -> SessionRecord | None: ...
    def _read_claim_on(self, conn: psycopg.Connection, plan_id: str) -> ClaimRecord | None: ...


class _InTransaction:
    """The committed state as the open database transaction sees it."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection) -> None:
        self._store = store
        self._conn = conn

    def now(self) -> datetime:
        return self._store._now_on(self._conn)

    def read_session(self, session_id: str) -> SessionRecord | None:
        return self._store._read_session_on(self._conn, session_id)

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        self._conn.execute(
            self._store._q(
                "SELECT fencing_token FROM {s}.plans WHERE project = %s AND plan_id = %s FOR UPDATE"
            ),
            [self._store.project, plan_id],
        )
        return self._store._read_claim_on(self._conn, plan_id)


class PostgresTransaction(BufferedTransaction):
    """One unit of work on a :class:`~.store.PostgresStore` (see
    :meth:`~.store.PostgresStore.transaction`): reads in the database
    transaction, writes buffered and applied by :meth:`commit`."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection) -> None:
        super().__init__(_InTransaction(store, conn))
        self._store = store
        self._conn = conn

    def commit(self) -> None:
        """Write the buffered claims, sessions and events in this database
        transaction (the caller commits it).

        Raises:
            StoreError: a claim would lower its plan's fencing token.
            psycopg.Error: the database refused (the store maps it to StoreError).
        """
        for claim in self.claims.values():
            self._write_claim(claim)
            self._notify(claim)
        for session_id, record in self.sessions.items():
            if record is None:
                self._conn.execute(
                    self._store._q(
                        "DELETE FROM {s}.sessions WHERE project = %s AND session_id = %s"
                    ),
                    [self._store.project, session_id],
                )
            else:
                self._write_session(record)
        for event in self.events:
            self._append_event(event)

    def _write_session(self, record: SessionRecord) -> None:
        from psycopg.types.json import Jsonb

        safe_stem(record.session_id, "session_id")
        self._conn.execute(
            self._store._q(
                "INSERT INTO {s}.sessions (project, session_id, record) VALUES (%s, %s, %s) "
                "ON CONFLICT (project, session_id) DO UPDATE "
                "SET record = EXCLUDED.record, written_at = clock_timestamp()"
            ),
            [self._store.project, record.session_id, Jsonb(record.model_dump(mode="json"))],
        )

    def _write_claim(self, claim: ClaimRecord) -> None:
        from psycopg.types.json import Jsonb

        store, conn, project = self._store, self._conn, self._store.project
        safe_stem(claim.plan_id, "plan_id")
        raised = conn.execute(
            store._q(
                "INSERT INTO {s}.plans AS p (project, plan_id, fencing_token) "
                "VALUES (%s, %s, %s) ON CONFLICT (project, plan_id) "
                "DO UPDATE SET fencing_token = EXCLUDED.fencing_token "
                "WHERE p.fencing_token <= EXCLUDED.fencing_token RETURNING p.fencing_token"
            ),
            [project, claim.plan_id, claim.fencing_token],
        ).fetchone()
        if raised is None:
            raise StoreError(
                f"refused to lower plan {claim.plan_id}'s fencing token to "
                f"{claim.fencing_token} in {store.location}; nothing was changed"
            )
        # Close every other lease of the plan first: the unique index allows one live one.
        conn.execute(
            store._q(
                "UPDATE {s}.claims SET live = false WHERE project = %s AND plan_id = %s "
                "AND fencing_token <> %s AND live"
            ),
            [project, claim.plan_id, claim.fencing_token],
        )
        columns: dict[str, Any] = {
            "holder": claim.holder,
            "live": claim.holder is not None,
            "holder_host": claim.holder_host,
            "holder_pid": claim.holder_pid,
            "holder_pid_started_at": claim.holder_pid_started_at,
            "holder_pid_start_ticks": claim.holder_pid_start_ticks,
            "holder_boot_id": _text(getattr(claim, "holder_boot_id", None)),
            "holder_pid_namespace": _text(getattr(claim, "holder_pid_namespace", None)),
            "claimed_at": claim.claimed_at,
            "acquired_by": claim.acquired_by,
            "takeover_reason": claim.takeover_reason,
            "previous_holder": claim.previous_holder,
            "released_at": claim.released_at,
            "release_reason": claim.release_reason,
            "record": Jsonb(claim.model_dump(mode="json")),
        }
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns)
        conn.execute(
            # Column names are this module's constants, never input.
            store._q(
                f"INSERT INTO {{s}}.claims (project, plan_id, fencing_token, {names}) "
                f"VALUES (%s, %s, %s, {marks}) ON CONFLICT (project, plan_id, fencing_token) "
                f"DO UPDATE SET {updates}, written_at = clock_timestamp()"
            ),
            [project, claim.plan_id, claim.fencing_token, *columns.values()],
        )

    def _notify(self, claim: ClaimRecord) -> None:
        """A hint on channel :func:`claims_channel` (delivered only if this commits):
        ``{"project", "plan_id", "fencing_token", "holder"}`` as JSON. Listeners
        re-read the store; the notification is never the truth."""
        payload = json.dumps(
            {
                "project": self._store.project,
                "plan_id": claim.plan_id,
                "fencing_token": claim.fencing_token,
                "holder": claim.holder,
            }
        )
        self._conn.execute(
            "SELECT pg_notify(%s, %s)", [claims_channel(self._store.schema), payload]
        )

    def _append_event(self, event: Event) -> None:
        from psycopg.types.json import Jsonb

        self._conn.execute(
            self._store._q(
                "INSERT INTO {s}.events (project, at, kind, plan_id, session_id, event) "
                "VALUES (%s, %s, %s, %s, %s, %s)"
            ),
            [
                self._store.project,
                event.at.astimezone(UTC),
                event.event,
                event.plan_id,
                event.session_id,
                Jsonb(event.model_dump(mode="json")),
            ],
        )


def claims_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of claim changes in ``schema``: ``<schema>_claims``,
    the schema cut to 56 characters (a channel name has at most 63)."""
    return f"{schema[:56]}_claims"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


__all__ = ["PostgresTransaction", "claims_channel"]
