"""The PostgreSQL store: sessions on many machines sharing one database.

Rows of every table carry the ``project`` key (one database, many
repositories); the tables live in their own schema (:mod:`.schema`).

* A transaction (:meth:`PostgresStore.transaction`) is a database transaction
  on one connection. It first takes ``pg_advisory_xact_lock`` on the
  (schema, project) key, so units of work of one project exclude each other
  exactly as the directory's lock makes them (the service's read-decide-write
  sequences rely on it); waiting longer than the timeout (``lock_timeout``)
  raises StoreBusyError. Every transaction is bounded: ``lock_timeout``,
  ``statement_timeout`` and ``idle_in_transaction_session_timeout`` are set
  LOCAL to it. It commits all or nothing.
* Time is the database's: :meth:`PostgresStore.now` is ``clock_timestamp()``
  (not the transaction-frozen ``now()``), unless a clock is injected (tests).
* Faults: every psycopg error becomes StoreError naming the store by its URL
  without password (:func:`..urls.redact_url`) and saying nothing was changed.
  Connections come from a psycopg-pool pool that checks each connection before
  handing it out, so a database restart costs the operations in flight, not
  the ones after it.

psycopg is imported here only: the package imports this module lazily.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from pydantic import ValidationError

from ...domain.clock import Clock
from ...domain.errors import StoreBusyError, StoreError
from ...domain.models import ClaimRecord, Event, SessionRecord, Unreadable
from ...domain.validation import describe_validation_error
from ..names import safe_stem
from ..urls import redact_url
from . import schema as schema_mod
from .listen import ClaimListener
from .transaction import PostgresTransaction, claims_channel

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 30.0
"""Longest any one statement may run (reads and transactions)."""
IDLE_IN_TRANSACTION_S = 60.0
"""A transaction left idle this long is ended by the server (its locks freed)."""
CONNECT_TIMEOUT_S = 5
POOL_WAIT_S = 10.0
"""How long an operation waits for a pooled connection before failing."""
POOL_MAX = 10
APPLICATION_NAME = "mcp-server-heartbeat"
NOTHING_CHANGED = "nothing was changed"
COMMIT_UNKNOWN = (
    "the connection failed while committing, so whether the change was stored is "
    "unknown: it is not reported as done; the next call reads what the store holds"
)


class PostgresStore:
    """Session records, claim ledgers and events in PostgreSQL (see module doc).

    Construction connects to nothing and writes nothing; :meth:`prepare` (or the
    first transaction) applies the migrations.

    Args:
        url: ``postgresql://`` or ``postgres://`` URL (libpq conninfo URI); a
            password may come from it, ``PGPASSWORD`` or ``~/.pgpass``.
        project: the project key partitioning the rows (one repository).
        schema: the store's own schema (validated, see :mod:`.schema`).
        clock: "now" for liveness judgments (aware UTC); default: the
            database's ``clock_timestamp()``. Tests inject a fake one.
        lock_timeout: seconds :meth:`transaction` waits by default.
        pool: share connections through a psycopg-pool pool (default); False
            opens one connection per operation.

    Raises:
        ConfigError: the schema name is not accepted.
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        schema: str = "heartbeat",
        clock: Clock | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        pool: bool = True,
    ) -> None:
        self._url = url
        self.project = project
        self.schema = schema_mod.check_schema_name(schema)
        self._clock = clock
        self.lock_timeout = lock_timeout
        self.pool_timeout = POOL_WAIT_S
        self._use_pool = pool
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._migrated = False
        self._local = threading.local()
        self._lock_key = schema_mod.lock_key("store", schema, project)
        self._schema_id = sql.Identifier(schema)
        self._listener = ClaimListener(self._connect, claims_channel(self.schema), project)

    # -- identity ---------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The URL without its password, then ``#<project>``."""
        return f"{redact_url(self._url)}#{self.project}"

    def _q(self, text: str) -> sql.Composed:
        """``text`` with ``{s}`` replaced by the quoted schema name."""
        return sql.SQL(text).format(s=self._schema_id)  # type: ignore[arg-type]

    # -- connections ------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), "
            "set_config('idle_in_transaction_session_timeout', %s, false), "
            "set_config('TimeZone', 'UTC', false)",
            [_ms(STATEMENT_TIMEOUT_S), _ms(IDLE_IN_TRANSACTION_S)],
        )

    def _connect_options(self) -> dict[str, Any]:
        """psycopg.connect's options; the URL's own ``connect_timeout`` and
        ``application_name`` win over these defaults."""
        options: dict[str, Any] = {"autocommit": True}
        try:
            given = psycopg.conninfo.conninfo_to_dict(self._url)
        except psycopg.Error:
            given = {}
        if "connect_timeout" not in given:
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            options["application_name"] = APPLICATION_NAME
        return options

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self._url, **self._connect_options())
        self._configure(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode (explicit transactions only). Raises
        psycopg errors and psycopg_pool.PoolTimeout (mapped by :meth:`_faults`)."""
        if not self._use_pool:
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()
            return
        pool = self._get_pool()
        with pool.connection(timeout=self.pool_timeout) as conn:
            yield conn

    def _get_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self._pool = ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=POOL_MAX,
                    kwargs=self._connect_options(),
                    configure=self._configure,
                    check=_check_connection,
                    reconnect_timeout=0,
                    name="mcp-server-heartbeat",
                    open=True,
                )
            return self._pool

    def close(self) -> None:
        """Close the pool's connections (idempotent); the store reopens on next use."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        self._listener.close()

    # -- wake-ups -----------------------------------------------------------------------

    wakes_on_change = True
    """:meth:`wait_for_change` returns early on a claim change (LISTEN/NOTIFY)."""

    def wait_for_change(self, timeout: float) -> bool:
        """Block at most ``timeout`` seconds for a claim change of this project
        (a NOTIFY on a dedicated LISTEN connection, see :mod:`.listen`): True when
        woken (re-read the store: the hint is never the truth; a reconnect after
        a lost connection wakes too), False on timeout or any fault. Never raises."""
        return self._listener.wait(timeout)

    def watch_claim(self, plan_id: str) -> ClaimListener:
        """A watch of ``plan_id``'s ledger: a LISTEN on a connection of its own
        (opened before this returns, so no change after it is missed), woken by
        the NOTIFY of a change of this plan only. Close it when done. A fault
        (database down) is a timeout; the next wait reconnects, and a reconnect
        wakes (changes may have been missed)."""
        safe_stem(plan_id, "plan_id")
        listener = ClaimListener(
            self._connect, claims_channel(self.schema), self.project, plan_id=plan_id
        )
        listener.open()
        return listener

    @contextmanager
    def _faults(self, doing: str, outcome: list[str] | None = None) -> Iterator[None]:
        """Turn database faults into StoreError naming the store (no password) and
        saying what was done: ``outcome[0]`` when given (it may change while the
        block runs), else "nothing was changed"."""
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            changed = outcome[0] if outcome else NOTHING_CHANGED
            raise self._fault(exc, doing, changed) from exc

    def _fault(self, exc: Exception, doing: str, changed: str) -> StoreError:
        """The StoreError telling a person what failed and what was (not) done."""
        from psycopg_pool import PoolTimeout

        if isinstance(exc, PoolTimeout):
            return StoreError(
                f"the PostgreSQL store {self.location} is unreachable (no connection within "
                f"{self.pool_timeout:g} s) while {doing}; {changed}"
            )
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(
                f"the PostgreSQL store {self.location} is unreachable while {doing} "
                f"({self._scrub(exc)}); {changed}"
            )
        return StoreError(
            f"the PostgreSQL store {self.location} refused {doing} ({self._scrub(exc)}); {changed}"
        )

    def _scrub(self, exc: BaseException) -> str:
        """The first line of ``exc``'s message with any password of the URL removed."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        try:
            password = psycopg.conninfo.conninfo_to_dict(self._url).get("password")
        except psycopg.Error:
            password = None
        if password:
            text = text.replace(str(password), "***")
        return text

    # -- schema -----------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply pending migrations (once, under an advisory lock; see :mod:`.schema`);
        returns the schema version.

        Raises:
            StoreError: the database is unreachable or refused.
        """
        with self._faults("migrating the schema"), self._connection() as conn:
            version = schema_mod.migrate(conn, self.schema)
        self._migrated = True
        return version

    def prepare(self) -> list[str]:
        """:meth:`migrate`; no warnings. Raises StoreError."""
        self.migrate()
        return []

    def exists(self) -> bool:
        """Whether the store's schema holds its tables (False before the first migration).

        Raises:
            StoreError: the database is unreachable.
        """
        with self._faults("reading"), self._connection() as conn:
            return schema_mod.current_version(conn, self.schema) > 0

    # -- time -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The database's ``clock_timestamp()`` (aware UTC), or the injected clock's.

        Raises:
            StoreError: the database is unreachable.
        """
        if self._clock is not None:
            return self._clock()
        with self._faults("reading the clock"), self._connection() as conn:
            return self._now_on(conn)

    def _now_on(self, conn: psycopg.Connection) -> datetime:
        if self._clock is not None:
            return self._clock()
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        return row[0].astimezone(UTC)

    # -- the unit of work -------------------------------------------------------------

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[PostgresTransaction]:
        """An exclusive unit of work of this project: one database transaction
        holding the project's advisory lock; commits when the block ends
        normally, rolls back when it raises.

        Raises:
            StoreBusyError: another unit of work held the project for ``timeout``
                seconds (None: ``lock_timeout``); nothing was changed.
            StoreError: the database is unreachable or refused; nothing was changed.
            RuntimeError: a transaction of this store is already open in this thread.
        """
        wait = self.lock_timeout if timeout is None else timeout
        if getattr(self._local, "open", False):
            raise RuntimeError(
                "a transaction of this store is already open in this thread; "
                "transactions are not re-entrant"
            )
        if not self._migrated:
            self.migrate()
        self._local.open = True
        outcome = [NOTHING_CHANGED]
        try:
            with (
                self._faults("running a unit of work", outcome),
                self._connection() as conn,
                conn.transaction(),
            ):
                self._begin(conn, wait)
                tx = PostgresTransaction(self, conn)
                yield tx
                tx.commit()
                outcome[0] = COMMIT_UNKNOWN
        finally:
            self._local.open = False

    def _begin(self, conn: psycopg.Connection, wait: float) -> None:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true), "
            "set_config('statement_timeout', %s, true), "
            "set_config('idle_in_transaction_session_timeout', %s, true)",
            [_ms(wait), _ms(STATEMENT_TIMEOUT_S), _ms(IDLE_IN_TRANSACTION_S)],
        )
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self._lock_key])
        except pg_errors.LockNotAvailable as exc:
            raise StoreBusyError(
                f"the PostgreSQL store {self.location} stayed busy for {wait:g} s (another "
                "unit of work of this project held it); nothing was changed, try again"
            ) from exc

    def busy_holder(self, wait: float = 0.0) -> dict[str, Any] | None:
        """The database backend holding this project's unit of work, or None
        (``wait`` is ignored; informational only)."""
        key = self._lock_key
        try:
            with self._connection() as conn:
                row = conn.execute(
                    "SELECT a.pid, a.application_name, host(a.client_addr), a.xact_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
                    [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
                ).fetchone()
        except Exception:  # informational: "cannot tell" is None
            return None
        if row is None:
            return None
        pid, app, client, since = row
        return {
            "backend_pid": pid,
            "application_name": app,
            "client_addr": client,
            "since": since,
            "description": (
                f"database backend {pid} ({app or 'unknown application'}"
                f"{' from ' + client if client else ''}) holds a unit of work of "
                f"{self.location}; it ends by itself (lock and idle timeouts)"
            ),
        }

    # -- reads: no lock, never modify -------------------------------------------------

    def _rows(self, text: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of one read; [] when the schema does not exist yet."""
        with self._faults("reading"), self._connection() as conn:
            try:
                return conn.execute(self._q(text), params).fetchall()
            except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
                return []

    def _read_session_on(self, conn: psycopg.Connection, session_id: str) -> SessionRecord | None:
        safe_stem(session_id, "session_id")
        row = conn.execute(
            self._q("SELECT record FROM {s}.sessions WHERE project = %s AND session_id = %s"),
            [self.project, session_id],
        ).fetchone()
        if row is None:
            return None
        try:
            return SessionRecord.model_validate(row[0])
        except (ValidationError, ValueError):
            return None

    def _read_claim_on(self, conn: psycopg.Connection, plan_id: str) -> ClaimRecord | None:
        safe_stem(plan_id, "plan_id")
        row = conn.execute(
            self._q(
                "SELECT record FROM {s}.claims WHERE project = %s AND plan_id = %s "
                "ORDER BY fencing_token DESC LIMIT 1"
            ),
            [self.project, plan_id],
        ).fetchone()
        return None if row is None else self._claim(plan_id, row[0])

    def _claim(self, plan_id: str, data: Any) -> ClaimRecord:
        try:
            return ClaimRecord.model_validate(data)
        except ValidationError as exc:
            raise StoreError(
                f"plan {plan_id}'s claim ledger in {self.location} cannot be read: "
                f"{describe_validation_error(exc, 'record')}"
            ) from exc

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The committed record of ``session_id``, or None when missing or unreadable."""
        safe_stem(session_id, "session_id")
        with self._faults("reading"), self._connection() as conn:
            try:
                return self._read_session_on(conn, session_id)
            except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
                return None

    def list_sessions(self) -> tuple[list[SessionRecord], list[Unreadable]]:
        """Every readable record by session id, and the rows that are not valid records."""
        records: list[SessionRecord] = []
        unreadable: list[Unreadable] = []
        rows = self._rows(
            "SELECT session_id, record FROM {s}.sessions WHERE project = %s ORDER BY session_id",
            [self.project],
        )
        for session_id, data in rows:
            try:
                records.append(SessionRecord.model_validate(data))
            except ValidationError as exc:
                unreadable.append(
                    Unreadable(
                        file=f"{session_id}.json",
                        reason=f"not a valid SessionRecord: "
                        f"{describe_validation_error(exc, 'record')}",
                    )
                )
        return records, unreadable

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The plan's current ledger (its lease of the highest token), or None if
        never claimed. Raises StoreError when it cannot be read."""
        safe_stem(plan_id, "plan_id")
        with self._faults("reading"), self._connection() as conn:
            try:
                return self._read_claim_on(conn, plan_id)
            except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
                return None

    def iter_claims(self) -> Iterator[ClaimRecord]:
        """Every readable current ledger, by plan id."""
        rows = self._rows(
            "SELECT DISTINCT ON (plan_id) plan_id, record FROM {s}.claims WHERE project = %s "
            "ORDER BY plan_id, fencing_token DESC",
            [self.project],
        )
        for plan_id, data in rows:
            try:
                yield self._claim(plan_id, data)
            except StoreError as exc:
                log.warning("%s", exc)

    def _events(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        events: list[Event] = []
        for (data,) in rows:
            try:
                events.append(Event.model_validate(data))
            except ValidationError:
                continue
        return events

    def read_events(self) -> list[Event]:
        """Every readable event of this project, oldest first."""
        return self._events(
            self._rows(
                "SELECT event FROM {s}.events WHERE project = %s ORDER BY id", [self.project]
            )
        )

    def plan_history(self, plan_id: str, limit: int | None) -> list[Event]:
        """The ``limit`` most recent events of ``plan_id`` (None: all), oldest
        first; the database reads only those rows (``ORDER BY id DESC LIMIT``)."""
        safe_stem(plan_id, "plan_id")
        if limit is not None and limit <= 0:
            return []
        rows = self._rows(
            "SELECT event FROM (SELECT id, event FROM {s}.events WHERE project = %s "
            "AND plan_id = %s ORDER BY id DESC LIMIT %s) AS recent ORDER BY id",
            [self.project, plan_id, limit],
        )
        return self._events(rows)

    def count_plan_events(self, plan_id: str, kinds: frozenset[str]) -> int:
        """How many events of ``plan_id`` with a kind in ``kinds`` the log holds."""
        safe_stem(plan_id, "plan_id")
        rows = self._rows(
            "SELECT count(*) FROM {s}.events WHERE project = %s AND plan_id = %s "
            "AND kind = ANY(%s)",
            [self.project, plan_id, sorted(kinds)],
        )
        return int(rows[0][0]) if rows else 0

    def unreadable_events(self) -> int:
        """How many events of this project are not valid events (edited by hand)."""
        rows = self._rows("SELECT event FROM {s}.events WHERE project = %s", [self.project])
        return len(rows) - len(self._events(rows))

    # -- gc -----------------------------------------------------------------------------

    def prune_events(self, before: datetime, dry_run: bool = False) -> int:
        """Drop this project's events older than ``before`` (UTC), in a unit of
        work; returns how many were (or would be) dropped.

        Raises:
            StoreError, StoreBusyError.
        """
        with self.transaction() as tx:
            text = (
                "SELECT count(*) FROM {s}.events WHERE project = %s AND at < %s"
                if dry_run
                else "WITH gone AS (DELETE FROM {s}.events WHERE project = %s AND at < %s "
                "RETURNING 1) SELECT count(*) FROM gone"
            )
            row = tx._conn.execute(self._q(text), [self.project, before]).fetchone()
            return int(row[0]) if row else 0

    def prune_temp_files(self, before: datetime, dry_run: bool = False) -> list[str]:
        """A database leaves no temp files: always []."""
        return []


def _ms(seconds: float) -> str:
    """A PostgreSQL duration setting in milliseconds, at least 1 (0 would mean "no limit")."""
    return f"{max(1, int(seconds * 1000))}ms"


def _check_connection(conn: psycopg.Connection) -> None:
    """The pool's check before handing a connection out: a dead one is replaced."""
    from psycopg_pool import ConnectionPool

    ConnectionPool.check_connection(conn)


__all__ = ["DEFAULT_LOCK_TIMEOUT_S", "PostgresStore"]
