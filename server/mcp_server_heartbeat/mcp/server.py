"""The MCP layer: tools, lifespan and signals over a :class:`~.runtime.Runtime`.

Thin on purpose: each tool validates nothing itself, calls one service method
and returns its pydantic model (so clients get ``outputSchema`` and
``structuredContent``). A :class:`~.errors.HeartbeatError` becomes an
``isError`` result with the error's text, written for the agent that reads it.

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
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import Field, WithJsonSchema

from ..domain.errors import HeartbeatError
from ..domain.ids import PlanId
from ..domain.models import (
    BranchArg,
    ClaimResult,
    ConfigValue,
    FencingTokenArg,
    FlagArg,
    HeartbeatResult,
    LabelArg,
    ListResult,
    ReleaseResult,
    Role,
    SessionInfoResult,
    Status,
)
from ..domain.queue import DEFAULT_WAIT_S, MAX_WAIT_S
from ..domain.validation import KEBAB_PATTERN, MAX_KIND_CHARS, MAX_TOPIC_CHARS, validate_kebab
from ..runtime import Runtime
from ..session.heartbeat import change_waiter, run_heartbeat, watch_parent
from ..session.service import SessionService
from ..session.wait_loop import wait_for_plan as wait_loop
from .consent import claim_with_consent, declared_elicitation
from .middleware import listing_uncollected, without_prompts
from .replies import sessions_text
from .resources import NotFoundError, plan_json, session_json, sessions_json
from .strict import HeartbeatServer, resource_not_found, strict_tool

log = logging.getLogger(__name__)

SERVER_NAME = "heartbeat"
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


def tags_schema(kinds: Collection[str] | None = None) -> dict[str, Any]:
    """The advertised shape of ``heartbeat(tags=...)``: exactly what ``parse_tags`` accepts.

    ``kinds`` is the project's vocabulary (``session_tracking.tags.kinds``);
    when given, ``kind`` is one of them. The tool itself takes any JSON value so
    that a wrong shape gets ``parse_tags``'s message, which says what is
    accepted; it accepts nothing this schema refuses.
    """
    kind: dict[str, Any] = {"type": "string", "pattern": f"^{KEBAB_PATTERN}$"}
    kind["maxLength"] = MAX_KIND_CHARS
    if kinds is not None:
        kind = {"enum": [k for k in kinds if _is_kebab(k, MAX_KIND_CHARS)], "type": "string"}
    topic = {"type": "string", "pattern": f"^{KEBAB_PATTERN}$", "maxLength": MAX_TOPIC_CHARS}
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "kind": {"anyOf": [kind, {"type": "null"}], "default": None},
                    "topics": {"type": "array", "items": topic, "maxItems": 2},
                },
                "additionalProperties": False,
            },
            {"type": "null"},
        ],
        "default": None,
        "description": 'Session tags, e.g. {"kind": "feature", "topics": ["auth", '
        '"review-loop"]}: kind lowercase kebab-case (<= 40 chars), from the project\'s '
        "vocabulary (session_tracking.tags.kinds) when it has one; at most 2 topics, lowercase "
        "kebab-case, <= 20 chars. A flat list or other keys are refused.",
    }


def _is_kebab(value: str, max_chars: int) -> bool:
    try:
        validate_kebab(value, "kind", max_chars)
    except HeartbeatError:
        return False
    return True


TAGS_SCHEMA = tags_schema()
"""The tags schema of a project without a kind vocabulary."""
TagsArg = Annotated[Any, WithJsonSchema(TAGS_SCHEMA)]

DISABLED_MESSAGE = (
    "Session tracking is disabled for this project (.ahrena/.directives: "
    "session_tracking.enabled is false). Nothing is recorded and no plan can be claimed; "
    "ask the user to enable it if coordination is needed."
)

T = TypeVar("T")


def server_version() -> str:
    """The installed distribution's version, so serverInfo cannot drift."""
    try:
        return version("mcp-server-heartbeat")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


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
        tools=_tools(tags_schema(runtime.service.tag_kinds if runtime.service else None)),
        middleware=[without_prompts, listing_uncollected],
    )
    _register_resources(app, runtime)
    return app


def _annotations(title: str, *, read_only: bool, destructive: bool = False) -> ToolAnnotations:
    """The tool hints: every tool is idempotent and touches only this project's directory."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=True,
        open_world_hint=False,
    )


def _tools(tags_json_schema: dict[str, Any]) -> list[Tool]:
    """The six tools, each with strict arguments (:func:`~.strict.strict_tool`)."""

    def heartbeat(
        ctx: Context,
        activity: Annotated[
            LabelArg | None,
            Field(
                description="Label of your current step, e.g. 'kata-pr-prepare:step3' "
                "(<= 200 chars)."
            ),
        ] = None,
        role: Annotated[
            Role | None, Field(description="Your role: creator | executor | reviewer | releaser.")
        ] = None,
        tags: TagsArg = None,
    ) -> HeartbeatResult:
        """Refresh this session's record and say what you are doing.

        The server already beats in the background; call this at step boundaries
        with `activity` so others see your progress. Returns your session view
        and `claim_lost`: null normally; if set ({plan_id, taken_by, at, reason}),
        another session took your plan (you were stale or proven dead) — stop
        working on it, and do not use its old fencing token.
        """
        return _call(ctx, lambda s: s.heartbeat(activity=activity, role=role, tags=tags))

    # This project's tag vocabulary goes into the advertised schema.
    heartbeat.__annotations__["tags"] = Annotated[Any, WithJsonSchema(tags_json_schema)]
    tags_property = {"tags": tags_json_schema}  # decided at start, not from the file

    async def claim_plan(
        ctx: Context,
        plan_id: Annotated[
            PlanId,
            Field(
                description="The plan (work item) id, e.g. '043' or 'feat-login': "
                "[A-Za-z0-9][A-Za-z0-9._-]{0,127}."
            ),
        ],
        force: Annotated[
            FlagArg,
            Field(
                description="Take the plan from a holder that is stale but not proven dead "
                "(the user is asked to confirm first when the client supports elicitation)."
            ),
        ] = False,
    ) -> ClaimResult:
        """Claim a plan exclusively before working on it. One plan per session.

        Outcomes:
        - claimed: it was free; it is yours with a new `fencing_token`.
        - already_yours: you hold it already (same token); carry on.
        - holding_other: you hold another plan (`held_plan`); release it first.
        - held_by_other: another session holds it (`holder` shows who, its
          status and heartbeat age). Pick another plan. Only if the holder is
          `stale` and you are sure it is abandoned, retry with force=true.
        - taken_over: the holder's process was proven dead (automatic), or it
          was stale and you forced it; `previous_session` is the old holder:
          check what it left behind before going on.
        - force_declined: you forced a stale holder, the user was asked to
          confirm and did not; nothing changed (`holder` shows who holds it).
          Do not work on that plan.
        A live holder with a fresh heartbeat is never displaced.
        """
        if force and declared_elicitation(ctx):  # ask the person before force
            return await claim_with_consent(ctx, lambda op: _call(ctx, op), plan_id)
        return await anyio.to_thread.run_sync(
            lambda: _call(ctx, lambda s: s.claim(plan_id, force=force))
        )

    async def wait_for_plan(
        ctx: Context,
        plan_id: Annotated[
            PlanId,
            Field(
                description="The plan (work item) id to wait for, e.g. '043': "
                "[A-Za-z0-9][A-Za-z0-9._-]{0,127}."
            ),
        ],
        timeout_s: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_WAIT_S,
                description=f"Seconds to wait, 0 to {MAX_WAIT_S:.0f} (default "
                f"{DEFAULT_WAIT_S:.0f}); larger values are refused. Call again to wait longer.",
            ),
        ] = DEFAULT_WAIT_S,
    ) -> ClaimResult:
        """Wait until a plan can be claimed, then claim it (first come, first served).

        Blocks until the holder releases the plan (or ends, or is proven dead),
        then claims it exactly as claim_plan would without force. Sessions
        waiting for the same plan are served in the order they started waiting.
        Outcomes: claimed / taken_over (yours, with `fencing_token`);
        already_yours / holding_other (at once, as claim_plan); after
        `timeout_s`: held_by_other (`holder` still holds it) or reserved
        (free, but `holder` waits ahead of you), with `queue_position`,
        `waited_s` and `retry_after_s` (call again within a few seconds to keep
        your place). Sends progress notifications when the request has a
        progressToken; cancelling the request leaves the queue and never
        leaves you holding the plan.
        """
        service = await anyio.to_thread.run_sync(_service, ctx)  # its mutex: not on the loop

        async def progress(waited: float, total: float, message: str) -> None:
            await ctx.report_progress(waited, total, message)

        try:
            return await wait_loop(service, plan_id, timeout_s, progress)
        except HeartbeatError as exc:
            raise ToolError(str(exc)) from exc

    def list_sessions(
        ctx: Context,
        status: Annotated[
            Status | None,
            Field(description="Only this status: active | idle | stale | dead | ended."),
        ] = None,
        plan_id: Annotated[
            PlanId | None, Field(description="Only sessions holding this plan.")
        ] = None,
        branch: Annotated[
            BranchArg | None, Field(description="Only sessions on this git branch.")
        ] = None,
        include_ended: Annotated[
            FlagArg, Field(description="Also list sessions that ended cleanly.")
        ] = False,
    ) -> ListResult:
        """List the sessions in this project's heartbeat directory. Read-only.

        Each session has `status` (active | idle | stale | dead | ended),
        `health` (healthy < 60 s | warning < 180 s | critical, by heartbeat
        age), `heartbeat_age_s`, `seconds_until_stale`, `plan_id` it holds and
        `relationship` to you (self | same_conversation | other_active |
        stale_alive | stale_remote | dead | ended). `unreadable` lists files
        in the directory that are not valid session records, and why.
        """

        def run(service: SessionService) -> ListResult:
            service.touch()
            return service.list_sessions(
                status=status, plan_id=plan_id, branch=branch, include_ended=include_ended
            )

        return _call(ctx, run)

    def release(
        ctx: Context,
        plan_id: Annotated[
            PlanId | None,
            Field(description="The plan to release; default: the one you hold."),
        ] = None,
        reason: Annotated[
            LabelArg | None, Field(description="Why, e.g. 'done' or 'blocked' (<= 200 chars).")
        ] = None,
        fencing_token: Annotated[
            FencingTokenArg | None,
            Field(
                description="Release only if this is still your claim's token (from claim_plan)."
            ),
        ] = None,
    ) -> ReleaseResult:
        """Release your plan when you are done, so another session can claim it.

        Outcomes: released; not_held (you do not hold it — nothing to do);
        stale_token (the token you gave is not your current claim's: the plan was
        taken over — nothing was changed).
        """
        return _call(
            ctx, lambda s: s.release(plan_id=plan_id, reason=reason, fencing_token=fencing_token)
        )

    def session_info(ctx: Context) -> SessionInfoResult:
        """This session's view, the resolved configuration (root, dir, interval,
        stale_after, idle_after — each with where it came from) and the
        background heartbeat's health ({last_success, consecutive_failures,
        healthy}), the project (type, package manager, framework, git branch,
        remote, root) and plans ({active: the plan you hold, suggested: a plan
        whose id or slug is in the branch name — a hint, claim it yourself}).
        Read-only. Works even when tracking is disabled.
        """
        runtime = _runtime(ctx)
        config = {
            name: ConfigValue(value=setting.value, source=setting.source)
            for name, setting in runtime.config.describe().items()
        }
        service = runtime.service
        if service is None:
            return SessionInfoResult(
                tracking_enabled=False,
                session=None,
                config=config,
                heartbeat=runtime.monitor.snapshot(),
                warnings=[DISABLED_MESSAGE],
                project=runtime.project,
                plans=runtime.plans(),
            )
        service.touch()
        return SessionInfoResult(
            tracking_enabled=True,
            session=service.view_self(),
            config=config,
            heartbeat=runtime.monitor.snapshot(),
            claim_lost=service.claim_lost,
            warnings=list(runtime.warnings),
            continues=service.continues,
            project=runtime.project,
            plans=runtime.plans(),
        )

    return [
        strict_tool(
            heartbeat,
            annotations=_annotations("Heartbeat", read_only=False),
            properties=tags_property,
        ),
        strict_tool(
            claim_plan, annotations=_annotations("Claim a plan", read_only=False, destructive=True)
        ),
        strict_tool(
            wait_for_plan,
            annotations=_annotations("Wait for a plan", read_only=False, destructive=True),
        ),
        strict_tool(
            list_sessions,
            annotations=_annotations("List sessions", read_only=True),
            text=sessions_text,
        ),
        strict_tool(
            release, annotations=_annotations("Release a plan", read_only=False, destructive=True)
        ),
        strict_tool(session_info, annotations=_annotations("Session info", read_only=True)),
    ]


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


def _runtime(ctx: Context) -> Runtime:
    runtime: Runtime = ctx.request_context.lifespan_context
    return runtime


def _service(ctx: Context) -> SessionService:
    """The session's service (its client noted); a tool error when tracking is off."""
    service = _runtime(ctx).service
    if service is None:
        raise ToolError(DISABLED_MESSAGE)
    params = ctx.session.client_params
    if params is not None:
        service.note_client(params.client_info.name, params.client_info.version)
    return service


def _call(ctx: Context, operation: Callable[[SessionService], T]) -> T:
    """Run one service operation for a tool; turn our errors into tool errors."""
    service = _service(ctx)
    try:
        return operation(service)
    except HeartbeatError as exc:
        raise ToolError(str(exc)) from exc


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

    The SDK reads stdin in a worker thread that cannot be cancelled, so a
    graceful return would hang until stdin closes; ``os._exit`` does not.
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
