"""Watches of one plan's ledger for ``wait_for_plan``: wake on a change, cheaply.

:class:`PollingWatch` compares a cheap signature of the ledger (for the heartbeat
directory: the ``stat`` of ``claims/<plan_id>.json``, which every atomic write
replaces; for memory: a change counter) every :data:`POLL_S` seconds. Nothing
it reports is the truth: the waiter re-reads the ledger in a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

POLL_S = 0.1
"""Seconds between two looks at the ledger's signature (a ``stat``: cheap)."""


class PollingWatch:
    """Wakes when ``signature()`` differs from the last one seen.

    Args:
        signature: a cheap, never-raising look at the ledger (equal values: no change).
        period: seconds between two looks.
    """

    def __init__(self, signature: Callable[[], Hashable], period: float = POLL_S) -> None:
        self._signature = signature
        self._period = period
        self._seen = signature()

    def wait(self, timeout: float) -> bool:
        """Block at most ``timeout`` seconds; True as soon as the signature
        changed since the last call (or since creation), False on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            now = self._signature()
            if now != self._seen:
                self._seen = now
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self._period, left))

    def close(self) -> None:
        """Nothing to release."""


def stat_signature(path: str) -> Callable[[], Hashable]:
    """The signature of the file at ``path``: inode, size and modification time
    in nanoseconds (None while it does not exist)."""
    import os

    def signature() -> Hashable:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    return signature


__all__ = ["POLL_S", "PollingWatch", "stat_signature"]
