"""Run a piece of a test as the unprivileged user ``nobody``: root ignores
permission bits, so a read-only directory or another user's file is only real
for a process that dropped root."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

NOBODY = 65534


def as_nobody(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` in a forked child that has dropped root (setgroups, setgid,
    setuid to ``nobody``); return the JSON-able dict it returned.

    Raises:
        AssertionError: the child failed (its exit code was not 0).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child running as nobody failed"
    result: dict[str, Any] = json.loads(data)
    return result
