"""stdin and stdout served by a thread each (``mcp/stdio_pipes.py``).

What the SDK's own ``stdio_server()`` guaranteed must still hold with these
streams: stray writes to fd 1 never reach the protocol stream, replies leave
in order and none is lost at exit, a client that stops reading never stalls
the background heartbeat, and the process exits 0 on stdin EOF.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from mcp_server_heartbeat.mcp.stdio_pipes import StdinLines, StdoutLines
from stdio_client import CONSOLE_SCRIPT, clean_env, wait_until

CLAIM_SCRIPT = r"""
import os, sys
from mcp_server_heartbeat.mcp.stdio_pipes import claimed_stdio
with claimed_stdio() as (stdin_fd, stdout_fd):
    os.write(1, b"stray to fd 1\n")
    print("stray print", flush=True)
    os.write(stdout_fd, b"protocol " + os.read(stdin_fd, 100))
    assert os.read(0, 10) == b"", "fd 0 reads the null device while claimed"
os.write(1, b"after\n")
"""


def test_the_claim_diverts_fds_0_and_1_and_restores_them() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLAIM_SCRIPT],
        input=b"line\n",
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == b"protocol line\nafter\n"
    assert b"stray to fd 1\n" in done.stderr and b"stray print\n" in done.stderr


@pytest.mark.anyio
async def test_lines_are_read_in_order_undecodable_bytes_replaced_then_the_end() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"a": 1}\n' + b"\xff bad\n" + b"last without newline")
    os.close(write_end)
    try:
        with anyio.fail_after(10):
            lines = [line async for line in StdinLines(read_end)]
    finally:
        os.close(read_end)
    assert lines == ['{"a": 1}\n', "\ufffd bad\n", "last without newline"]


@pytest.mark.anyio
async def test_replies_leave_in_order_and_drain_waits_for_them() -> None:
    read_end, write_end = os.pipe()
    out = StdoutLines(write_end)
    big = "x" * 200_000  # more than a pipe holds: the writer thread must block
    received = bytearray()

    def reader() -> None:
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)

    with anyio.fail_after(20):
        for text in ("one\n", big + "\n", "three\n"):
            await out.write(text)
            await out.flush()
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, reader)
            assert await anyio.to_thread.run_sync(out.drain)
            os.close(write_end)
    os.close(read_end)
    assert bytes(received) == ("one\n" + big + "\n" + "three\n").encode()


@pytest.mark.anyio
async def test_a_closed_pipe_drops_the_rest_and_says_so_once() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    told: list[bool] = []
    out = StdoutLines(write_end, on_broken=lambda: told.append(True))
    for _ in range(3):
        await out.write("nobody reads this\n")
        await out.flush()
    assert out.drain(10)
    os.close(write_end)
    assert told == [True]


@pytest.mark.anyio
async def test_a_full_non_blocking_pipe_is_waited_on_not_given_up() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    told: list[bool] = []
    out = StdoutLines(write_end, on_broken=lambda: told.append(True))
    big = "y" * 300_000
    received = bytearray()

    def reader() -> None:
        while chunk := os.read(read_end, 4096):
            received.extend(chunk)

    with anyio.fail_after(20):
        await out.write(big + "\n")
        await out.flush()
        await out.write("next\n")
        await out.flush()
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, reader)
            assert await anyio.to_thread.run_sync(out.drain, 15)
            os.close(write_end)
    os.close(read_end)
    assert bytes(received) == (big + "\nnext\n").encode() and not told


AFTER_THE_LOOP = r"""
import asyncio, os, threading
from mcp_server_heartbeat.mcp.stdio_pipes import StdinLines
r, w = os.pipe()
async def main():
    lines = StdinLines(r)
    os.write(w, b"first\n")
    assert await lines.__anext__() == "first\n"
    return next(t for t in threading.enumerate() if t.name == "heartbeat-stdin")
reader = asyncio.run(main())
os.write(w, b"a line after the loop closed\n")
os.close(w)
reader.join(10)
assert not reader.is_alive(), "the reader thread did not stop"
"""


def test_the_reader_stops_quietly_once_the_loop_is_closed() -> None:
    done = subprocess.run([sys.executable, "-c", AFTER_THE_LOOP], capture_output=True, timeout=30)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()


def test_a_client_that_closes_its_end_of_stdout_ends_the_session(tmp_path: Path) -> None:
    """The client stops listening (closes the read end of the server's stdout)
    but keeps stdin open: the next reply fails with EPIPE, the input is ended,
    and the server ends the session as on stdin EOF: claim released, record
    ended, exit 0."""
    root = tmp_path / "project"
    root.mkdir()
    sessions = root / ".ahrena/workflow/sessions"
    proc = _start(root, "--session-id", "deaf")
    try:
        _initialize(proc)
        _send(proc, _claim(1, "043"))
        assert json.loads(proc.stdout.readline())["result"]["structuredContent"]["claimed"]
        proc.stdout.close()
        pings = iter(range(2, 10_000))

        def ended() -> bool:
            if proc.poll() is None:
                _send(proc, {"jsonrpc": "2.0", "id": next(pings), "method": "ping"})
            return proc.poll() is not None

        wait_until(ended, timeout=15, what="the server's exit after EPIPE")
        assert proc.wait(5) == 0
        record = json.loads((sessions / "deaf.json").read_text())
        ledger = json.loads((sessions / "claims" / "043.json").read_text())
        assert record["ended_at"] is not None and record.get("plan_id") is None
        assert ledger["holder"] is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start(root: Path, *args: str) -> subprocess.Popen[bytes]:
    """The console script serving ``root`` over pipes (stderr discarded)."""
    return subprocess.Popen(
        [CONSOLE_SCRIPT, *args],
        cwd=root,
        env=clean_env(root),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _send(proc: subprocess.Popen[bytes], message: dict[str, object]) -> None:
    with contextlib.suppress(BrokenPipeError):  # the server may be gone already
        proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]


def _claim(request_id: int, plan_id: str) -> dict[str, object]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "claim_plan", "arguments": {"plan_id": plan_id}},
    }


def _initialize(proc: subprocess.Popen[bytes]) -> None:
    _send(
        proc,
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "pipes", "version": "1"},
            },
        },
    )
    assert json.loads(proc.stdout.readline())["id"] == 0  # type: ignore[union-attr]
    _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})


def test_a_client_that_stops_reading_does_not_stall_the_heartbeat(tmp_path: Path) -> None:
    """Requests keep coming but no reply is read: the stdout pipe fills and the
    writer thread blocks; the event loop still beats, and once the client reads
    again every reply arrives, in order, and EOF ends the server with 0."""
    root = tmp_path / "project"
    root.mkdir()
    sessions = root / ".ahrena/workflow/sessions"
    proc = _start(root, "--session-id", "stuck", "--interval", "0.5", "--stale-after", "5")
    try:
        _initialize(proc)
        # A tools/list reply is about 2.4 KiB: 60 of them (~145 KiB) overfill a 64 KiB pipe.
        requests = 60
        for request_id in range(1, requests + 1):
            _send(proc, {"jsonrpc": "2.0", "id": request_id, "method": "tools/list"})

        def beat() -> str:
            return str(json.loads((sessions / "stuck.json").read_text())["last_heartbeat"])

        first = beat()
        wait_until(lambda: beat() != first, timeout=15, what="a beat while stdout is full")
        ids = [json.loads(proc.stdout.readline())["id"] for _ in range(requests)]
        assert ids == list(range(1, requests + 1))
        proc.stdin.close()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
