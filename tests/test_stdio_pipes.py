"""stdin and stdout served by a thread each (``mcp/stdio_pipes.py``).

What the SDK's own ``stdio_server()`` guaranteed must still hold with these
streams: stray writes to fd 1 never reach the protocol stream, replies leave
in order and none is lost at exit, a client that stops reading never stalls
the background heartbeat, and the process exits 0 on stdin EOF.
"""

from __future__ import annotations

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
async def test_a_closed_pipe_drops_the_rest_without_raising() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    out = StdoutLines(write_end)
    await out.write("nobody reads this\n")
    await out.flush()
    assert out.drain(10)
    os.close(write_end)


def test_a_client_that_stops_reading_does_not_stall_the_heartbeat(tmp_path: Path) -> None:
    """Requests keep coming but no reply is read: the stdout pipe fills and the
    writer thread blocks; the event loop still beats, and once the client reads
    again every reply arrives, in order, and EOF ends the server with 0."""
    root = tmp_path / "project"
    root.mkdir()
    sessions = root / ".ahrena/workflow/sessions"
    proc = subprocess.Popen(
        [CONSOLE_SCRIPT, "--session-id", "stuck", "--interval", "0.5", "--stale-after", "5"],
        cwd=root,
        env=clean_env(root),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:

        def send(message: dict[str, object]) -> None:
            proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        send(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "stuck", "version": "1"},
                },
            }
        )
        assert json.loads(proc.stdout.readline())["id"] == 0
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        # A tools/list reply is about 2.4 KiB: 60 of them (~145 KiB) overfill a 64 KiB pipe.
        requests = 60
        for request_id in range(1, requests + 1):
            send({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"})

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
