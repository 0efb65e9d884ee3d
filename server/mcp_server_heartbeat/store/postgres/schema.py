"""The PostgreSQL store's tables: versioned migrations applied once, under a lock.

Every table lives in the store's own schema (default ``heartbeat``) and every
row carries the ``project`` key, so one database serves many repositories.
:func:`migrate` runs all pending migrations in ONE transaction holding
``pg_advisory_xact_lock`` on a key derived from the schema name: ten servers
starting at once serialise there, the first applies the migrations and records
them in ``schema_version``, the others find nothing left to do. Re-running is
a no-op (idempotent). The schema name is validated (:func:`check_schema_name`)
and always quoted with :class:`psycopg.sql.Identifier`; no other identifier
ever comes from configuration or input.

Version 1 (issue "Team mode", item 3):

* ``plans``: one row per plan ever claimed; ``fencing_token`` is the plan's
  token counter, locked (``SELECT ... FOR UPDATE``) and raised inside the
  claim's transaction; a CHECK keeps it >= 0.
* ``claims``: one row per (plan, fencing token): the lease that token granted,
  its holder's identity, when and how it was acquired and released, and the
  ledger as the service wrote it (``record`` JSONB, every field kept). ``live``
  is true for the plan's current lease while held; the partial unique index
  ``claims_one_live_per_plan`` allows one live claim per plan, the last line
  of defence if the code ever tried a second.
* ``sessions``: one row per session record (``record`` JSONB, every field,
  extra ones included).
* ``events``: the append-only log (``event`` JSONB), with an index for a
  plan's history (newest first).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from ...domain.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

SCHEMA_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""Accepted schema names: lower-case letters, digits and ``_``, 1 to 63 characters."""

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE {s}.plans (
            project text NOT NULL,
            plan_id text NOT NULL,
            fencing_token bigint NOT NULL CHECK (fencing_token >= 0),
            PRIMARY KEY (project, plan_id)
        );
        CREATE TABLE {s}.claims (
            project text NOT NULL,
            plan_id text NOT NULL,
            fencing_token bigint NOT NULL CHECK (fencing_token >= 0),
            holder text,
            live boolean NOT NULL DEFAULT false,
            holder_host text,
            holder_pid integer,
            holder_pid_started_at timestamptz,
            holder_pid_start_ticks bigint,
            holder_boot_id text,
            holder_pid_namespace text,
            claimed_at timestamptz,
            acquired_by text,
            takeover_reason text,
            previous_holder text,
            released_at timestamptz,
            release_reason text,
            record jsonb NOT NULL,
            written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (project, plan_id, fencing_token),
            FOREIGN KEY (project, plan_id) REFERENCES {s}.plans (project, plan_id),
            CHECK (NOT live OR holder IS NOT NULL)
        );
        CREATE UNIQUE INDEX claims_one_live_per_plan ON {s}.claims (project, plan_id)
            WHERE live;
        CREATE TABLE {s}.sessions (
            project text NOT NULL,
            session_id text NOT NULL,
            record jsonb NOT NULL,
            written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (project, session_id)
        );
        CREATE TABLE {s}.events (
            project text NOT NULL,
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL,
            kind text NOT NULL,
            plan_id text,
            session_id text,
            event jsonb NOT NULL
        );
        CREATE INDEX events_plan_history ON {s}.events (project, plan_id, id DESC);
        CREATE INDEX events_by_project ON {s}.events (project, id);
        """,
    ),
)
"""(version, SQL with ``{s}`` for the quoted schema), in order; never edit a released one."""

LATEST_VERSION = MIGRATIONS[-1][0]


def check_schema_name(name: str) -> str:
    """Return ``name`` when it is an accepted schema name (:data:`SCHEMA_NAME_PATTERN`).

    Raises:
        ConfigError: it is not; the message names the value and the rule.
    """
    if isinstance(name, str) and SCHEMA_NAME_PATTERN.match(name):
        return name
    raise ConfigError(
        f"schema name {name!r} is not accepted: use 1 to 63 lower-case letters, digits "
        "or '_', not starting with a digit (e.g. 'heartbeat')"
    )


def lock_key(purpose: str, *parts: str) -> int:
    """A stable signed 64-bit advisory lock key for ``purpose`` and ``parts``
    (the same in every process and every Python version)."""
    digest = hashlib.blake2b("\0".join((purpose, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def current_version(conn: psycopg.Connection, schema: str) -> int:
    """The schema's recorded version; 0 when it was never migrated."""
    from psycopg import sql

    found = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".schema_version']
    ).fetchone()
    if not found or not found[0]:
        return 0
    row = conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {s}.schema_version").format(
            s=sql.Identifier(schema)
        )
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection, schema: str) -> int:
    """Apply every pending migration of ``schema`` in one transaction under an
    advisory lock; returns the schema version (:data:`LATEST_VERSION`).

    ``conn`` must be idle (no transaction open). Raises psycopg errors (the
    store turns them into StoreError).
    """
    from psycopg import sql

    check_schema_name(schema)
    quoted = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key("migrate", schema)])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=quoted))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {s}.schema_version ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                " applied_by integer NOT NULL DEFAULT pg_backend_pid())"
            ).format(s=quoted)
        )
        version = current_version(conn, schema)
        for number, text in MIGRATIONS:
            if number <= version:
                continue
            conn.execute(sql.SQL(text).format(s=quoted))  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("INSERT INTO {s}.schema_version (version) VALUES (%s)").format(s=quoted),
                [number],
            )
            version = number
    return version


__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "SCHEMA_NAME_PATTERN",
    "check_schema_name",
    "current_version",
    "lock_key",
    "migrate",
]
