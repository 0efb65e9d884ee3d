"""The six tools of the MCP server: their arguments (strict, with the schemas
clients validate against), their descriptions for the agent, and the one call
each makes into :class:`~..session.service.SessionService`.

Thin on purpose: each tool validates nothing itself, calls one service method
and returns its pydantic model (so clients get ``outputSchema`` and
``structuredContent``). A :class:`~..domain.errors.HeartbeatError` becomes an
``isError`` result with the error's text, written for the agent that reads it.
Store work runs in worker threads, never on the event loop (the service's
mutex is held for whole store transactions).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
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
from ..session.service import SessionService
from ..session.wait_loop import wait_for_plan as wait_loop
from .consent import claim_with_consent, declared_elicitation
from .replies import sessions_text
from .strict import strict_tool


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


def _annotations(title: str, *, read_only: bool, destructive: bool = False) -> ToolAnnotations:
    """The tool hints: every tool is idempotent and touches only this project's directory."""
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=True,
        open_world_hint=False,
    )


def build_tools(tags_json_schema: dict[str, Any]) -> list[Tool]:
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


__all__ = ["DISABLED_MESSAGE", "TAGS_SCHEMA", "TagsArg", "build_tools", "tags_schema"]
