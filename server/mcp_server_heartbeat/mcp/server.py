"""The MCP server: its instructions, lifespan, resources and signals over a
:class:`~.runtime.Runtime`; the tools are in :mod:`.tools`.

Shutdown (design: "Lifecycle"): stdin EOF runs the lifespan's ``finally``;
SIGTERM, SIGINT and SIGHUP are received inside the lifespan (the SDK would
otherwise die without cleanup, or hang on its stdin thread) and the parent
watch catches a client that died without closing stdin. Each path releases the
claim, marks the record ended and exits 0 within a second.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, distribution, version

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from ..domain.errors import HeartbeatError
from ..runtime import Runtime
from ..session.heartbeat import change_waiter, run_heartbeat, watch_parent
from ..session.service import SessionService
from .middleware import listing_uncollected, without_prompts
from .resources import NotFoundError, plan_json, session_json, sessions_json
from .strict import HeartbeatServer, resource_not_found
from .tools import DISABLED_MESSAGE, build_tools, tags_schema

log = logging.getLogger(__name__)

SERVER_NAME = "heartbeat"
DISTRIBUTION = "mcp-server-heartbeat"
SHUTDOWN_LOCK_TIMEOUT_S = 0.7
"""How long shutdown waits for the directory lock: clients kill after 2 s."""

INSTRUCTIONS = """\
This server coordinates the coding sessions working on one repository; each session is recorded \
and a plan (a work item such as '043') is held by one session at a time.
1. Start: call session_info to see your session, the project and a suggested plan (a hint from \
the branch name; it is never claimed for you). Call list_sessions before starting something \
others may hold.
2. Claim before you work: claim_plan(plan_id). Work on it only if the outcome is claimed, \
already_yours or taken_over; keep the fencing_token and pass it to anything that must refuse a \
stale holder. After taken_over, check what the previous session left (uncommitted work, branches).
3. Refused (held_by_other): do not work on that plan; pick another or ask the user. Use \
force=true only when the holder is stale and you are sure it is abandoned; a live holder is \
never displaced; the user may be asked to confirm a force, and force_declined means they did \
not: do not work on that plan. holding_other: release your plan first. reserved: other \
sessions are waiting for that plan and go first.
   To wait instead (the plan is held but you need exactly it, e.g. the holder is finishing): \
wait_for_plan(plan_id, timeout_s) blocks until it can be claimed and claims it for you, first \
come, first served (never by force); on timeout it returns the holder: call it again at once to \
keep your place, or pick other work.
4. While working: heartbeat(activity='<skill>:<step>') at step boundaries; tags as \
{"kind": ..., "topics": [at most 2 kebab-case words]}.
5. Lost: if heartbeat returns claim_lost (or a notice in the conversation says your claim was \
taken over), stop working on that plan at once and do not use its \
old fencing token; tell the user, then re-check with list_sessions.
6. Done: release(plan_id, reason='done'). The server releases on disconnect, but release as soon \
as the work is finished so others can start.
7. Subagents share this server with the session that dispatched them: every call a subagent \
makes acts as that parent session (its heartbeat, its claim, its token). A subagent must not \
claim, release or force plans; it works within the parent's claim and reports back to the parent.
"""


def server_version() -> str:
    """The installed distribution's version, so serverInfo cannot drift.

    Read from the ``Version:`` line of its metadata's header, as
    ``importlib.metadata.version`` reads it; that one parses the whole file,
    the README included, as an e-mail message (about 2 ms of every start).
    """
    try:
        text = distribution(DISTRIBUTION).read_text("METADATA") or ""
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
    for line in text.split("\n\n", 1)[0].splitlines():  # the header ends at a blank line
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "version":
            return value.strip()
    return version(DISTRIBUTION)  # pragma: no cover - no such line: the library decides


def build_app(runtime: Runtime) -> MCPServer[Runtime]:
    """Build the MCP server for one session (one stdio connection)."""

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        service = runtime.service
        if service is None:
            yield runtime
            return
        async with anyio.create_task_group() as tasks:
            wait = change_waiter(service.store)  # None for the directory: interval sleeps
            tasks.start_soon(run_heartbeat, service.beat, runtime.monitor, runtime.interval, wait)
            if runtime.watch_parent:
                period = min(1.0, runtime.interval)
                tasks.start_soon(
                    watch_parent,
                    service.identity.client_pid,
                    lambda: _exit_after_end(runtime, "client_exit"),
                    period,
                )
            if runtime.handle_signals:
                tasks.start_soon(_handle_signals, runtime)
            try:
                yield runtime
            finally:
                tasks.cancel_scope.cancel()
                _end(runtime, "disconnect")

    app: MCPServer[Runtime] = HeartbeatServer(
        SERVER_NAME,
        version=server_version(),
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=build_tools(tags_schema(runtime.service.tag_kinds if runtime.service else None)),
        middleware=[without_prompts, listing_uncollected],
    )
    _register_resources(app, runtime)
    return app


def _register_resources(app: MCPServer[Runtime], runtime: Runtime) -> None:
    """Read-only JSON views of the directory; the content comes from ``resources``."""

    def read(render: Callable[[SessionService], str], uri: str) -> str:
        if runtime.service is None:
            raise ResourceError(DISABLED_MESSAGE)
        try:
            return render(runtime.service)
        except NotFoundError as exc:
            raise resource_not_found(str(exc), uri) from exc
        except HeartbeatError as exc:
            raise ResourceError(str(exc)) from exc

    @app.resource(
        "heartbeat://sessions",
        name="sessions",
        title="Sessions",
        description="Every session in the heartbeat directory (ended ones too) with status, "
        "health, heartbeat age and seconds until stale; and unreadable files.",
        mime_type="application/json",
    )
    def sessions() -> str:
        return read(sessions_json, "heartbeat://sessions")

    @app.resource(
        "heartbeat://sessions/{session_id}",
        name="session",
        title="One session",
        description="One session's view: plan, fencing token, status, health, heartbeat age.",
        mime_type="application/json",
    )
    def session(session_id: str) -> str:
        return read(
            lambda service: session_json(service, session_id),
            f"heartbeat://sessions/{session_id}",
        )

    @app.resource(
        "heartbeat://plans/{plan_id}",
        name="plan",
        title="One plan",
        description="A plan's holder, fencing token, number of transitions (claims, "
        "takeovers, releases) and recent events from the event log.",
        mime_type="application/json",
    )
    def plan(plan_id: str) -> str:
        return read(lambda service: plan_json(service, plan_id), f"heartbeat://plans/{plan_id}")


def _end(runtime: Runtime, reason: str) -> None:
    """End the session (release, ``ended_at``); log instead of raising."""
    if runtime.service is None:
        return
    try:
        runtime.service.end(reason, lock_timeout=SHUTDOWN_LOCK_TIMEOUT_S)
    except Exception as exc:
        log.error("could not mark session %s ended: %s", runtime.service.session_id, exc)
    else:
        log.info("session %s ended (%s)", runtime.service.session_id, reason)


async def _exit_after_end(runtime: Runtime, reason: str) -> None:
    """End the session, then leave the process at once with status 0.

    Stdin is read by a thread blocked in ``read`` that cannot be cancelled
    (:mod:`.stdio_pipes`, or the SDK's worker thread), so a graceful return
    would hang until stdin closes; ``os._exit`` does not.
    """
    _end(runtime, reason)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


async def _handle_signals(runtime: Runtime) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            await _exit_after_end(runtime, signal.Signals(signum).name.lower())


__all__ = [
    "DISABLED_MESSAGE",
    "INSTRUCTIONS",
    "SERVER_NAME",
    "build_app",
    "server_version",
]
