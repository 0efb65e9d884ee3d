"""The cyclic collector paused around a listing: off inside, restored after,
shared by nested and concurrent listings, and only for listings."""

from __future__ import annotations

import gc
import threading
from typing import Any

import anyio
import pytest

from mcp_server_heartbeat.domain.gcpause import collection_paused
from mcp_server_heartbeat.mcp.middleware import listing_uncollected


@pytest.fixture(autouse=True)
def collector_on() -> Any:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_restored_after_even_on_error() -> None:
    with collection_paused():
        assert not gc.isenabled()
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_process_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()


def test_concurrent_pauses_end_with_the_last() -> None:
    entered, release = threading.Barrier(2), threading.Event()

    def worker() -> None:
        with collection_paused():
            entered.wait()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    with collection_paused():
        entered.wait()
    assert not gc.isenabled()  # the other thread's listing still runs
    release.set()
    thread.join()
    assert gc.isenabled()


class Ctx:
    def __init__(self, method: str, params: dict[str, Any] | None) -> None:
        self.method, self.params = method, params


@pytest.mark.parametrize(
    ("method", "params", "paused"),
    [
        ("tools/call", {"name": "list_sessions", "arguments": {}}, True),
        ("tools/call", {"name": "wait_for_plan", "arguments": {}}, False),
        ("tools/call", None, False),
        ("tools/list", {}, False),
    ],
)
def test_the_middleware_pauses_only_a_listing(
    method: str, params: dict[str, Any] | None, paused: bool
) -> None:
    seen: list[bool] = []

    async def call_next(ctx: Any) -> dict[str, Any]:
        seen.append(gc.isenabled())
        return {"ok": True}

    result = anyio.run(listing_uncollected, Ctx(method, params), call_next)  # type: ignore[arg-type]
    assert result == {"ok": True}
    assert seen == [not paused]
    assert gc.isenabled()
