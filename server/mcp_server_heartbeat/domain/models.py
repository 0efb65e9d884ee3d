"""Pydantic models: the records on disk and the views the tools return.

Two records live in the heartbeat directory:

* :class:`SessionRecord` — ``<dir>/<session_id>.json``. Its kata keys
  (``session_id, entrypoint, agent_version, plan_id, branch, cwd, started_at,
  last_heartbeat, last_activity, role, previous_session, tags``) keep the names
  and meaning of the kata-session-heartbeat schema so existing readers keep
  working; the rest is added by this server. Unknown keys written by other
  tools are kept (``extra="allow"``).
* :class:`ClaimRecord` — ``<dir>/claims/<plan_id>.json``, the plan's lease and
  token ledger: who holds it and the last fencing token ever issued for it. It
  outlives releases so tokens never go back.

Timestamps are aware UTC datetimes, written as ISO 8601 with ``Z``.

Unlike the other modules, this one does not postpone its annotations (no
``from __future__ import annotations``): pydantic would evaluate each field's
annotation from a string when the class is created, about 2 ms of every
server start for these models.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StrictBool,
    model_validator,
)

from .clock import format_utc
from .validation import LABEL_PATTERN, MAX_LABEL_CHARS

SCHEMA_VERSION = 1


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
"""A datetime normalised to UTC; serialised as ``2026-11-20T23:10:24.123Z``.

The stored models (records, ledgers, events) use it: one format on disk."""


def _as_utc_ms(moment: datetime) -> datetime:
    utc = _as_utc(moment)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


ReplyDatetime = Annotated[datetime, AfterValidator(_as_utc_ms)]
"""A datetime in a tool reply: UTC, millisecond precision, serialised by pydantic's
own (Rust) serialiser as ``2026-11-20T23:10:24.123000Z`` (ISO 8601 UTC with ``Z``;
whole seconds as ``2026-11-20T23:10:24Z``). A Python serialiser per date costs
about 4 µs, 16 ms per 1,000 sessions listed."""

Role = Literal["creator", "executor", "reviewer", "releaser"]
Status = Literal["active", "idle", "stale", "dead", "ended"]
Health = Literal["healthy", "warning", "critical"]
Relationship = Literal[
    "self", "same_conversation", "other_active", "stale_alive", "stale_remote", "dead", "ended"
]
OVER: frozenset[str] = frozenset({"ended", "dead"})
"""Statuses of a session that is over: no health, no time to stale."""
TakeoverReason = Literal["proof_of_death", "forced_stale", "holder_ended", "holder_missing"]


REPLY_CONFIG = ConfigDict(defer_build=True)
"""The config of the models only tool replies use: each is built on its first use,
not at import, so the server's start-up does not pay for replies not yet asked for."""
STORED_ON_USE = ConfigDict(extra="allow", defer_build=True)
"""The config of the stored models a server's start does not read or write (a
plan's ledger and its waiters): built on first use, like the replies."""


# -- tool argument types -------------------------------------------------------------
# Strict (no "yes" for a boolean, no "1" for an integer) and constrained in the
# input schema exactly as they are validated, so a client that checks arguments
# against the schema and the server never disagree (issue "Fault round two", 4).

# Plan ids: :data:`~.ids.PlanId`.


def label_arg(max_chars: int = MAX_LABEL_CHARS) -> Any:
    """A free-text label argument (activity, reason, branch): :data:`~.validation.LABEL_PATTERN`
    and at most ``max_chars`` characters."""
    return Annotated[
        str, Strict(), Field(min_length=1, max_length=max_chars, pattern=LABEL_PATTERN)
    ]


LabelArg = label_arg()
BranchArg = label_arg(256)
FlagArg = StrictBool
"""A boolean argument: JSON ``true``/``false`` only."""


def _integral_number(value: object) -> object:
    """JSON Schema's ``integer`` includes ``1.0``; a float without fraction becomes an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


FencingTokenArg = Annotated[int, Strict(), Field(ge=1), BeforeValidator(_integral_number)]
"""A fencing token argument: a JSON integer >= 1 (``1.0`` counts, ``"1"`` and ``true`` do not)."""


class Tags(BaseModel):
    """Session tags (seed: session-tracking codex, section 9): a kind and 0..2 topics."""

    model_config = ConfigDict(extra="forbid")

    kind: str | None = Field(default=None, description="What kind of work, e.g. 'feature'.")
    topics: list[str] = Field(default_factory=list, max_length=2, description="At most 2 topics.")


class ClaimLost(BaseModel):
    """How this session lost a claim it held: who took it, when (UTC), why."""

    model_config = REPLY_CONFIG

    plan_id: str
    taken_by: str | None = Field(description="Session id of the new holder, or null if released.")
    at: ReplyDatetime | None = Field(description="When the plan changed hands (UTC).")
    reason: str = Field(description="proof_of_death | forced_stale | holder_ended | ...")
    fencing_token: int | None = Field(
        default=None, description="The token this session held; refused from now on."
    )


class SessionRecord(BaseModel):
    """One session's record, ``<dir>/<session_id>.json`` (kata schema + additions)."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    session_id: str
    entrypoint: str | None = None
    agent_version: str | None = None
    plan_id: str | None = None
    branch: str | None = None
    cwd: str | None = None
    worktree: str | None = Field(
        default=None, description="Top level of the git worktree the session works in."
    )
    started_at: UtcDatetime | None = None
    last_heartbeat: UtcDatetime | None = None
    last_activity: str | None = Field(
        default=None, description="Label of the agent's last step, e.g. 'kata-pr-prepare:step3'."
    )
    last_call_at: UtcDatetime | None = Field(
        default=None, description="When the agent last called a tool (UTC); drives 'idle'."
    )
    role: str | None = None
    previous_session: str | None = None
    tags: Tags | dict[str, Any] | None = None
    host: str | None = None
    pid: int | None = None
    pid_started_at: UtcDatetime | None = None
    pid_start_ticks: int | None = Field(
        default=None,
        description="Process start in clock ticks since boot: proves PID reuse exactly.",
    )
    client_pid: int | None = None
    fencing_token: int | None = None
    claimed_at: UtcDatetime | None = None
    heartbeat_interval_s: float | None = None
    adopted_at: UtcDatetime | None = Field(
        default=None, description="When a restarted server last adopted this record (UTC)."
    )
    ended_at: UtcDatetime | None = None
    end_reason: str | None = None
    claim_lost: ClaimLost | None = None
    # Where the process runs and a step-free heartbeat clock (liveness rules; records
    # of earlier versions lack them and are never proven dead, see liveness.py).
    boot_id: str | None = Field(
        default=None, description="Kernel boot id of the host the process runs on."
    )
    pid_namespace: str | None = Field(
        default=None, description="PID namespace of the process, e.g. 'pid:[4026531836]'."
    )
    time_namespace: str | None = Field(
        default=None, description="Time namespace of the process (boot-time clock offsets)."
    )
    last_heartbeat_boottime: float | None = Field(
        default=None,
        description="CLOCK_BOOTTIME seconds at last_heartbeat; ages on the same boot use it.",
    )


class Waiter(BaseModel):
    """One entry of a plan's wait queue (``wait_for_plan``), kept in its ledger.

    ``since`` is when the session joined (UTC; the queue is served in this
    order, first come, first served); ``until`` when the entry expires (UTC:
    the wait's deadline plus a short grace to call again and keep the place).
    An expired entry, or one of a session that is not live (stale, dead, ended,
    missing), is skipped and dropped by the next waiter or claim.
    """

    model_config = STORED_ON_USE

    session_id: str
    since: UtcDatetime
    until: UtcDatetime


class ClaimRecord(BaseModel):
    """A plan's lease and token ledger, ``<dir>/claims/<plan_id>.json``.

    ``fencing_token`` is the last token issued for the plan, kept after release,
    so the next claim gets a larger one (design: fencing tokens grow forever).
    ``holder`` is null while the plan is free.
    """

    model_config = STORED_ON_USE

    schema_version: int = SCHEMA_VERSION
    plan_id: str
    fencing_token: int = Field(ge=0)
    holder: str | None = None
    holder_host: str | None = None
    holder_pid: int | None = None
    holder_pid_started_at: UtcDatetime | None = None
    holder_pid_start_ticks: int | None = None
    claimed_at: UtcDatetime | None = None
    acquired_by: Literal["claim", "takeover"] | None = None
    takeover_reason: TakeoverReason | None = None
    previous_holder: str | None = None
    released_at: UtcDatetime | None = None
    release_reason: str | None = None
    # The holder's process space, beside holder_host/holder_pid (liveness rules).
    holder_boot_id: str | None = None
    holder_pid_namespace: str | None = None
    # The sessions waiting for the plan, oldest first (wait_for_plan, design: issue 12).
    waiters: list[Waiter] = Field(default_factory=list)


class Unreadable(BaseModel):
    """A file in the heartbeat directory that could not be read as a session."""

    model_config = REPLY_CONFIG

    file: str = Field(description="File name inside the heartbeat directory.")
    reason: str = Field(description="Why it was skipped (parse error, not a regular file, ...).")


class SessionView(BaseModel):
    """A session as the tools show it: the record plus computed liveness.

    Ages are seconds (floats), computed against the reader's clock; a
    heartbeat in the reader's future counts as age 0 and the skew is reported.
    """

    model_config = REPLY_CONFIG

    session_id: str
    plan_id: str | None
    branch: str | None
    cwd: str | None
    worktree: str | None = Field(
        default=None, description="Top level of the git worktree the session works in."
    )
    role: str | None
    entrypoint: str | None
    agent_version: str | None
    started_at: ReplyDatetime | None
    last_heartbeat: ReplyDatetime | None
    last_activity: str | None
    last_call_at: ReplyDatetime | None
    previous_session: str | None
    fencing_token: int | None
    claimed_at: ReplyDatetime | None
    host: str | None
    pid: int | None
    tags: Tags | dict[str, Any] | None
    status: Status = Field(description="active | idle | stale | dead | ended")
    health: Health | None = Field(
        description="healthy (< 60 s) | warning (< 180 s) | critical, by heartbeat age; "
        "null for a session that is over (ended or dead)"
    )
    heartbeat_age_s: float | None = Field(description="Seconds since the last heartbeat.")
    seconds_until_stale: float | None = Field(
        description="Seconds left before the session is stale; null for a session that is "
        "over (ended or dead)"
    )
    clock_skew_s: float | None = Field(
        default=None, description="Seconds the record's heartbeat lies in the reader's future."
    )
    relationship: Relationship = Field(
        description="To the caller: self | same_conversation | other_active | stale_alive | "
        "stale_remote | dead | ended"
    )
    process_alive: bool | None = Field(description="Null for a session on another host.")
    ended_at: ReplyDatetime | None = None
    end_reason: str | None = None

    @model_validator(mode="after")
    def _nothing_left_to_measure(self) -> Self:
        """Health and time-to-stale describe a running session; one that is over
        (ended, or its process proven dead) has neither (issue "Fault round two", 8)."""
        if self.status in OVER:
            self.health = None
            self.seconds_until_stale = None
        return self

    @classmethod
    def of_checked(cls, fields: dict[str, Any]) -> Self:
        """The view ``SessionView(**fields)`` would build, without validating again.

        For inputs already checked: the fields of a validated
        :class:`SessionRecord` and a computed liveness (``liveness.view_of``).
        ``fields`` must name every field (taken over, not copied). The rules
        validation applies are applied here as well: reply dates become UTC at
        millisecond precision (:data:`ReplyDatetime`; a stored record's dates
        already are), and a session that is over gets no health and no time to
        stale. About three times cheaper than validation (a listing of 10,000
        sessions builds 10,000 views); ``tests/test_readers_records.py`` checks
        both build equal views.
        """
        if fields["tags"] is not None and type(fields["tags"]) is not Tags:
            return cls(**fields)  # free-form tags (a record of another tool): validated
        for name in _VIEW_DATES:
            moment = fields[name]
            if moment is not None and (moment.microsecond % 1000 or moment.tzinfo is not UTC):
                fields[name] = _as_utc_ms(moment)
        if fields["status"] in OVER:
            fields["health"] = None
            fields["seconds_until_stale"] = None
        view = _new_object(cls)
        _set_attribute(view, "__dict__", fields)
        _set_attribute(view, "__pydantic_fields_set__", set(fields))
        _set_attribute(view, "__pydantic_extra__", None)
        _set_attribute(view, "__pydantic_private__", None)
        return view


_VIEW_DATES = ("started_at", "last_heartbeat", "last_call_at", "claimed_at", "ended_at")
"""The :data:`ReplyDatetime` fields of :class:`SessionView`."""
_new_object = object.__new__
_set_attribute = object.__setattr__


class HeartbeatResult(BaseModel):
    """Result of ``heartbeat``: this session, and a claim loss not yet reported."""

    model_config = REPLY_CONFIG

    session: SessionView
    claim_lost: ClaimLost | None = Field(
        description="Set once, on the first heartbeat after this session lost its claim."
    )


ClaimOutcome = Literal[
    "claimed",
    "already_yours",
    "holding_other",
    "held_by_other",
    "taken_over",
    "force_declined",
    "reserved",
]


class ClaimResult(BaseModel):
    """Result of ``claim_plan``. ``claimed`` is true for claimed, already_yours, taken_over.

    ``force_declined``: ``force=true`` against a stale holder, the person was asked
    (MCP elicitation) and did not confirm; nothing changed, ``holder`` is that holder.
    """

    model_config = REPLY_CONFIG

    outcome: ClaimOutcome
    claimed: bool
    plan_id: str
    fencing_token: int | None = Field(description="Token of your claim when claimed, else null.")
    holder: SessionView | None = Field(
        description="The current holder when it is not you (held_by_other, force_declined)."
    )
    previous_session: str | None = Field(description="The displaced holder on taken_over.")
    takeover_reason: TakeoverReason | None = None
    held_plan: str | None = Field(default=None, description="Your other plan on holding_other.")
    message: str
    queue_position: int | None = Field(
        default=None,
        description="wait_for_plan: your place in the plan's wait queue when it timed out "
        "(1 = next); reserved: the number of live waiters ahead of you. Else null.",
    )
    waited_s: float | None = Field(
        default=None, description="wait_for_plan: seconds it waited before this answer."
    )
    retry_after_s: float | None = Field(
        default=None,
        description="wait_for_plan timed out: seconds after which to call it again (0 = at "
        "once; your place in the queue is kept for a short grace, see the message). Else null.",
    )


ReleaseOutcome = Literal["released", "not_held", "stale_token"]


class ReleaseResult(BaseModel):
    """Result of ``release``."""

    model_config = REPLY_CONFIG

    outcome: ReleaseOutcome
    released: bool
    plan_id: str | None
    message: str


class ListResult(BaseModel):
    """Result of ``list_sessions``: the sessions, and the files that could not be read."""

    model_config = REPLY_CONFIG

    sessions: list[SessionView]
    unreadable: list[Unreadable]


class ConfigValue(BaseModel):
    """One resolved setting and where it came from (flag, env, directives, default)."""

    model_config = REPLY_CONFIG

    value: bool | float | str | list[str] | None = Field(
        description="A path, a number of seconds, on/off, a list of names, or null (unset)."
    )
    source: str = Field(description="flag --x | env X | directives ... | git top level | default")


class HeartbeatHealth(BaseModel):
    """The background heartbeat's health."""

    model_config = REPLY_CONFIG

    last_success: ReplyDatetime | None
    consecutive_failures: int
    healthy: bool = Field(description="False after 3 failures in a row; it keeps retrying.")
    last_error: str | None = None


class Stack(BaseModel):
    """One technology stack found at the project root (see ``project.py``)."""

    type: str = Field(description="Python | Node.js | Go | Rust | Java | Ruby | PHP")
    package_manager: str | None = Field(description="e.g. uv, poetry, pip, pnpm, npm, cargo.")
    frameworks: list[str] = Field(default_factory=list, description="e.g. FastAPI, Next.js.")


class ProjectContext(BaseModel):
    """Where the session works, detected once from files at start (no network,
    no subprocess). ``type``/``package_manager``/``framework`` are those of the
    first stack; ``remote_url`` never carries credentials."""

    root: str = Field(description="The project root (absolute).")
    type: str | None = None
    package_manager: str | None = None
    framework: str | None = None
    stacks: list[Stack] = Field(default_factory=list)
    git_root: str | None = Field(default=None, description="The git work tree's top level.")
    branch: str | None = Field(default=None, description="Current branch; 'HEAD' when detached.")
    remote_url: str | None = Field(default=None, description="origin's URL, credentials removed.")


class PlanHint(BaseModel):
    """A plan file whose id or slug appears in the branch name: shown, never claimed."""

    model_config = REPLY_CONFIG

    plan_id: str = Field(description="The id to pass to claim_plan, e.g. '090'.")
    file: str = Field(description="The plan's file or folder name in the plans directory.")
    matched_by: Literal["id+slug", "id", "slug"]
    branch: str


class PlanContext(BaseModel):
    """The active plan (the one this session claimed) and a suggested one."""

    model_config = REPLY_CONFIG

    active: str | None = Field(description="The plan this session holds, or null.")
    suggested: PlanHint | None = Field(description="A branch-matched hint; never auto-claimed.")
    plans_dir: str


class SessionInfoResult(BaseModel):
    """Result of ``session_info``."""

    model_config = REPLY_CONFIG

    tracking_enabled: bool
    session: SessionView | None
    config: dict[str, ConfigValue]
    heartbeat: HeartbeatHealth
    claim_lost: ClaimLost | None = None
    warnings: list[str] = Field(default_factory=list)
    project: ProjectContext | None = Field(
        default=None, description="Project type, package manager, framework, git branch/remote."
    )
    plans: PlanContext | None = None
    continues: str | None = Field(
        default=None,
        description="The session id this server was started with, when a live process "
        "already ran under it: this session runs under a new id and continues it.",
    )


# -- events ------------------------------------------------------------------------

EventKind = Literal[
    "session_started",
    "session_adopted",
    "session_ended",
    "claim_granted",
    "claim_released",
    "claim_taken_over",
    "claim_lost",
    "loss_notified",
]
"""What happened. ``claim_*`` events other than ``claim_lost`` change the plan's holder;
``loss_notified`` records that the loser's conversation was told of a takeover
(by the ``post-tool-use`` or ``user-prompt-submit`` hook), so it is told once."""

TRANSITIONS: frozenset[str] = frozenset({"claim_granted", "claim_taken_over", "claim_released"})
"""The events that change a plan's holder; their number is the plan's transition count."""


class Event(BaseModel):
    """One entry of the event log: an append-only record of every change of
    sessions and claims, kept by every store (the directory: ``events.jsonl``).

    ``session_id`` is the session that acted (the new holder on a takeover, the
    loser on ``claim_lost``). ``fencing_token`` is the token granted, released
    or lost. ``previous_holder`` is the displaced session on
    ``claim_taken_over``; ``taken_by`` the new holder on ``claim_lost``.
    ``force`` is true when a takeover needed ``force=true``. A
    ``claim_taken_over`` event also carries ``holder_heartbeat_age_s``, seconds
    since the displaced holder's last heartbeat when it was taken over (an extra
    field; older events lack it). ``loss_notified`` names the loser as
    ``session_id``, the token it lost as ``fencing_token`` and the new holder as
    ``taken_by``.
    """

    model_config = ConfigDict(extra="allow")

    at: UtcDatetime = Field(
        description="When it happened (UTC, on the store's clock: the database's in team mode)."
    )
    event: EventKind
    session_id: str
    plan_id: str | None = None
    fencing_token: int | None = None
    reason: str | None = None
    previous_holder: str | None = None
    taken_by: str | None = None
    force: bool | None = None
    host: str | None = None
    pid: int | None = None


__all__ = [
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "BranchArg",
    "ClaimLost",
    "ClaimOutcome",
    "ClaimRecord",
    "ClaimResult",
    "ConfigValue",
    "Event",
    "EventKind",
    "FencingTokenArg",
    "FlagArg",
    "Health",
    "HeartbeatHealth",
    "HeartbeatResult",
    "LabelArg",
    "ListResult",
    "PlanContext",
    "PlanHint",
    "ProjectContext",
    "Relationship",
    "ReleaseOutcome",
    "ReleaseResult",
    "ReplyDatetime",
    "Role",
    "SessionInfoResult",
    "SessionRecord",
    "SessionView",
    "Stack",
    "Status",
    "Tags",
    "TakeoverReason",
    "Unreadable",
    "UtcDatetime",
    "Waiter",
]
