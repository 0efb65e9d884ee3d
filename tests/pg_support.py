"""PostgreSQL for the tests: the server named by ``HEARTBEAT_TEST_DSN``, one
throwaway schema (random name) per store, dropped after the test.

Without ``HEARTBEAT_TEST_DSN`` the PostgreSQL tests skip with the reason
below, except when ``CI=true``: there they fail, so a CI run never passes
without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest

SKIP_REASON = (
    "PostgreSQL store tests need a server: set HEARTBEAT_TEST_DSN="
    "postgresql://postgres@127.0.0.1:5432/test (any database the user may create "
    "schemas in) and install the postgres extra: pip install -e '.[postgres,test]'"
)


def test_dsn() -> str:
    """The test server's URL, or skip (fail when CI=true) with :data:`SKIP_REASON`."""
    dsn = os.environ.get("HEARTBEAT_TEST_DSN", "").strip()
    if not dsn:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("CI=true but HEARTBEAT_TEST_DSN is unset: " + SKIP_REASON)
        pytest.skip(SKIP_REASON)
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"CI=true but psycopg is missing ({exc}): " + SKIP_REASON)
        pytest.skip(f"psycopg is not installed ({exc}): " + SKIP_REASON)
    return dsn


test_dsn.__test__ = False  # type: ignore[attr-defined]


def random_schema() -> str:
    """A fresh schema name no other test uses."""
    return "hb_test_" + uuid.uuid4().hex[:12]


def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` and everything in it (test cleanup)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def make_store(
    cleanups: list[Callable[[], None]], project: str = "test-project", **options: Any
) -> Any:
    """A migrated PostgresStore on a random schema; its cleanup (close, drop)
    is appended to ``cleanups``."""
    from mcp_server_heartbeat.store.postgres import PostgresStore

    dsn = test_dsn()
    schema = options.pop("schema", None) or random_schema()
    store = PostgresStore(dsn, project, schema=schema, **options)

    def cleanup() -> None:
        store.close()
        drop_schema(dsn, schema)

    cleanups.append(cleanup)
    store.prepare()
    return store
