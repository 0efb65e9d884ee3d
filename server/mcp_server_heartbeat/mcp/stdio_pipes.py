"""The process's stdin and stdout for the SDK's stdio transport, each served by
one thread of its own instead of a worker-thread hop per line.

The SDK's ``stdio_server()`` reads stdin with ``anyio.wrap_file``: every line
is a ``to_thread`` round trip (the event loop hands the read to a worker
thread and is woken when it returns), and every reply is two more (``write``,
then ``flush``). A tool call therefore costs three thread hand-overs besides
the tool itself; on a machine with more runnable processes than cores (several
sessions racing for one plan) each hand-over waits for a time slice. Here:

- :class:`StdinLines`: one daemon thread blocks in ``readline`` on a private
  duplicate of fd 0 and hands each line to the event loop
  (``call_soon_threadsafe``); it reads at most :data:`READ_AHEAD` lines ahead.
- :class:`StdoutLines`: ``write`` collects text on the loop, ``flush``
  encodes it there (an encoding error surfaces where the SDK expects it) and
  queues the bytes for one daemon thread that writes them in order. The loop
  never waits for the pipe, so a client that stops reading blocks only that
  thread, never the heartbeat; :meth:`StdoutLines.drain` waits (at most
  :data:`DRAIN_TIMEOUT_S`) for the queue to empty before the process exits,
  so the last reply is sent unless the client has stopped reading. A client
  that closes its end of stdout (``EPIPE``) ends the input too, so the server
  ends the session as on stdin EOF instead of serving replies nobody reads.

Both are handed to the SDK's public ``stdio_server(stdin=..., stdout=...)``,
which then skips its own claim of fds 0 and 1; :func:`claimed_stdio` makes the
same claim: while serving, fd 0 reads the null device and fd 1 writes to
stderr, so a child process or a stray ``print`` cannot read the client's
requests or corrupt the protocol stream; both are restored on exit. Where the
claim cannot be made (no ``/dev/null``, fd 2 closed) it changes nothing and
raises, and the caller serves through the SDK's own transport.
Lines end at ``\n`` (``\r\n`` too): MCP's stdio messages are newline-delimited.
Nothing here imports ``mcp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import select
import threading
from collections.abc import Callable, Iterator

READ_AHEAD = 16
"""Lines read from stdin before the server has taken them (back-pressure)."""

DRAIN_TIMEOUT_S = 2.0
"""How long :meth:`StdoutLines.drain` waits for queued replies to be written."""


@contextlib.contextmanager
def claimed_stdio() -> Iterator[tuple[int, int]]:
    """Private duplicates ``(stdin_fd, stdout_fd)`` of fds 0 and 1, with fd 0
    pointed at the null device and fd 1 at stderr until the block exits (then
    both are restored). The duplicates are close-on-exec and never closed: a
    thread may still be blocked on them when the process exits.

    Raises:
        OSError: a descriptor could not be duplicated or the null device opened
            (nothing was changed: what was made is closed, fds 0 and 1 restored).
    """
    made: list[int] = []
    try:
        made.append(fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3))
        made.append(fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3))
        os.fstat(2)  # fd 2 must be open: fd 1 points at it while serving
        made.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        os.dup2(made[2], 0)
        os.dup2(2, 1)
    except OSError:
        if len(made) == 3:
            with contextlib.suppress(OSError):
                os.dup2(made[0], 0)
        for fd in made:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    os.close(made[2])
    private_in, private_out = made[0], made[1]
    try:
        yield private_in, private_out
    finally:
        with contextlib.suppress(OSError):
            os.dup2(private_in, 0)
        with contextlib.suppress(OSError):
            os.dup2(private_out, 1)


class StdinLines:
    """The lines of ``fd`` (UTF-8, undecodable bytes replaced, as the SDK reads
    them) as an async iterator for ``stdio_server(stdin=...)``; ends at EOF, on
    a read error or on :meth:`end`. Must be created inside the running event
    loop; once that loop is closed the thread stops at its next line."""

    def __init__(self, fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._room = threading.Semaphore(READ_AHEAD)
        self._file = os.fdopen(fd, "rb", closefd=False)
        threading.Thread(target=self._read, name="heartbeat-stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                self._room.acquire()
                line = self._file.readline()
                if not line:
                    break
                text = line.decode("utf-8", errors="replace")
                self._loop.call_soon_threadsafe(self._lines.put_nowait, text)
        except (OSError, ValueError):
            pass  # a read error ends the input like EOF does
        except RuntimeError:
            return  # the event loop is closed: serving is over, nobody reads
        self.end()

    def end(self) -> None:
        """End the input as EOF would (from any thread); lines not yet taken
        are still delivered first. Does nothing once the event loop is closed."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._lines.put_nowait, None)

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        line = await self._lines.get()
        if line is None:
            self._lines.put_nowait(None)  # every later read sees the end too
            raise StopAsyncIteration
        self._room.release()
        return line


class StdoutLines:
    """A text sink for ``stdio_server(stdout=...)``: ``await write(text)`` then
    ``await flush()`` queues the text, UTF-8 encoded, for a thread that writes
    it to ``fd`` in order. A write error (the client closed the pipe) drops the
    rest and calls ``on_broken`` once (the server passes
    :meth:`StdinLines.end`: no client reads, so the session ends as on EOF).
    A non-blocking ``fd`` that is full is waited on, not given up."""

    def __init__(self, fd: int, on_broken: Callable[[], None] | None = None) -> None:
        self._fd = fd
        self._on_broken = on_broken
        self._pending: list[str] = []
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._queued = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._write, name="heartbeat-stdout", daemon=True).start()

    async def write(self, text: str) -> None:
        self._pending.append(text)

    async def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        with self._lock:
            self._queued += 1
            self._idle.clear()
        self._queue.put(data)

    def _write(self) -> None:
        broken = False
        while True:
            data = self._queue.get()
            if data is None:
                return
            view = memoryview(data)
            while view and not broken:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:  # a non-blocking pipe, full: wait for room
                    with contextlib.suppress(OSError, ValueError):
                        select.select([], [self._fd], [], 1.0)
                except OSError:
                    broken = True
                    if self._on_broken is not None:
                        self._on_broken()
            with self._lock:
                self._queued -= 1
                if not self._queued:
                    self._idle.set()

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait up to ``timeout_s`` seconds for every queued reply to be
        written; True when none is left. Blocking: call it off the event loop
        or once serving is over."""
        return self._idle.wait(timeout_s)


__all__ = ["DRAIN_TIMEOUT_S", "READ_AHEAD", "StdinLines", "StdoutLines", "claimed_stdio"]
