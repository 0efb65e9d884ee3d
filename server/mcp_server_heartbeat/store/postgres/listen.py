"""Wake-ups from claim changes: LISTEN on the store's channel, a hint only.

:class:`ClaimListener` keeps one dedicated connection (never from the pool)
listening on :func:`~.transaction.claims_channel` and waits for a
notification of its own project. Nothing it hears is the truth: a waiter
re-reads the store after every wake-up. Any fault (database down, backend
terminated) is answered like a timeout; the next wait reconnects silently,
and a reconnect is itself a wake-up (changes may have been missed meanwhile).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


class ClaimListener:
    """Waits for claim-change notifications of ``project`` on ``channel``.

    Args:
        connect: opens a new autocommit connection (raises psycopg errors).
        channel: the LISTEN channel (see :func:`~.transaction.claims_channel`).
        project: only notifications whose payload names this project wake.
        plan_id: when given, only those that also name this plan wake.
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        channel: str,
        project: str,
        plan_id: str | None = None,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._project = project
        self._plan_id = plan_id
        self._conn: psycopg.Connection | None = None
        self._guard = threading.Lock()
        self._listened = False

    def wait(self, timeout: float) -> bool:
        """Block at most ``timeout`` seconds; True when a change of this project
        was notified (or the connection was re-established after a loss), False
        on timeout or on any fault. Never raises."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._guard:
            try:
                conn, reconnected = self._listening()
                if reconnected:
                    return True
                while (left := deadline - time.monotonic()) > 0:
                    for notify in conn.notifies(timeout=left, stop_after=1):
                        if self._ours(notify.payload):
                            return True
                return False
            except Exception as exc:  # a hint only: a fault is a timeout
                log.debug("claim-change listener lost (%s); reconnecting on next wait", exc)
                self._drop()
        time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def open(self) -> None:
        """LISTEN now rather than at the first wait, so a change made before
        that wait still wakes it. Never raises (a fault: the wait reconnects)."""
        with self._guard:
            try:
                self._listening()
            except Exception as exc:  # a hint only
                log.debug("claim-change listener could not open (%s)", exc)
                self._drop()
                self._listened = True  # so the wait's connect counts as a wake-up

    def _listening(self) -> tuple[psycopg.Connection, bool]:
        """The LISTEN connection, opened when missing; True when this is a
        reconnect after an earlier one was lost."""
        if self._conn is not None and not self._conn.closed:
            return self._conn, False
        conn = self._connect()
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self._conn = conn
        reconnected, self._listened = self._listened, True
        return conn, reconnected

    def _ours(self, payload: str) -> bool:
        try:
            data: Any = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(data, dict) or data.get("project") != self._project:
            return False
        return self._plan_id is None or data.get("plan_id") == self._plan_id

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                conn.close()

    def close(self) -> None:
        """Close the LISTEN connection (idempotent); a later wait reopens it
        (as a reconnect: it wakes)."""
        with self._guard:
            self._drop()


__all__ = ["ClaimListener"]
