"""``wait_for_plan`` never takes the session's mutex on the event loop thread:
worker threads hold it for whole store transactions (the background
heartbeat, another tool, a wait attempt), which may wait up to the lock
timeout (5 s); on the loop that would block every other request, progress
notification and cancellation of the server."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from mcp import Client

from mcp_server_heartbeat.mcp.server import build_app

pytestmark = pytest.mark.anyio


class SpyLock:
    """The service's RLock, noting the thread of each acquisition."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.threads: list[int] = []

    def __enter__(self) -> Any:
        self.threads.append(threading.get_ident())
        return self.inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self.inner.__exit__(*exc)

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        self.threads.append(threading.get_ident())
        return self.inner.acquire(*args, **kwargs)

    def release(self) -> None:
        self.inner.release()


async def test_wait_for_plan_never_takes_the_mutex_on_the_event_loop(make_runtime):
    runtime = make_runtime()
    spy = SpyLock(runtime.service._mutex)
    runtime.service._mutex = spy
    loop_thread = threading.get_ident()
    async with Client(build_app(runtime), mode="legacy") as client:
        spy.threads.clear()
        result = await client.call_tool("wait_for_plan", {"plan_id": "043", "timeout_s": 5})
        assert not result.is_error, result.content
        assert result.structured_content["outcome"] == "claimed"
        during = list(spy.threads)
    assert during, "the service's mutex was never taken"
    on_loop = [t for t in during if t == loop_thread]
    assert not on_loop, f"the mutex was taken {len(on_loop)} time(s) on the event loop thread"
