"""A minimal JSON-RPC client over a real server process's stdio, for tests that
need the process itself (kill -9, SIGTERM, closing stdin, raw protocol lines)."""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("mcp-server-heartbeat"))
PROTOCOL_VERSION = "2025-11-25"


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment a client would give: project dir set, no inherited session ids."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAUDE", "HEARTBEAT_")) and k != "AI_AGENT"
    }
    env["CLAUDE_PROJECT_DIR"] = str(root)
    env.update(extra)
    return env


def run_console(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion with no stdin (start-up failures)."""
    return subprocess.run(
        [CONSOLE_SCRIPT, *args],
        cwd=root,
        env=clean_env(root),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class StdioServer:
    """The console script as a subprocess, spoken to line by line."""

    def __init__(
        self,
        root: Path,
        *args: str,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """``prefix`` runs the console script under a wrapper, e.g. ``unshare``."""
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*prefix, CONSOLE_SCRIPT, *args],
            cwd=root,
            env=env or clean_env(root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
        )
        self._ids = itertools.count(1)
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict[str, Any] | bytes) -> None:
        assert self.proc.stdin is not None
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def receive(self, request_id: int, timeout: float = 15.0) -> dict[str, Any]:
        """The response with ``request_id`` (notifications are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no response to request {request_id}: {self.stderr()}")
            try:
                message = json.loads(self._lines.get(timeout=remaining))
            except queue.Empty:
                continue
            if message.get("id") == request_id:
                return message

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        return self.receive(request_id)

    def initialize(self) -> dict[str, Any]:
        response = self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "stdio-test", "version": "1.0"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return response["result"]

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """A tools/call; returns the result (``structuredContent``, ``isError``...)."""
        response = self.request("tools/call", {"name": tool, "arguments": arguments})
        return response["result"]

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr_file.close()


def wait_until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)
