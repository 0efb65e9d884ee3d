"""Assemble one session's parts from the configuration: the seam the MCP layer,
the CLI and the tests all use. No MCP here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .domain.clock import Clock, utc_now
from .domain.models import PlanContext, PlanHint, ProjectContext
from .host.config import Config, Flags, resolve_config
from .host.identity import detect_identity
from .host.plans import list_plans, suggest_plan
from .host.probe import ProcessProbe, probe_process
from .host.project import detect_project
from .session.heartbeat import HeartbeatMonitor
from .session.service import SessionService
from .store import Store, open_store


@dataclass
class Runtime:
    """Everything a running server holds.

    ``service`` is None when tracking is disabled (``session_tracking.enabled:
    false``). ``handle_signals`` and ``watch_parent`` are off for in-process
    test clients, which must not touch the test runner's signals or parent.
    """

    config: Config
    service: SessionService | None
    monitor: HeartbeatMonitor
    warnings: list[str] = field(default_factory=list)
    handle_signals: bool = True
    watch_parent: bool = True
    project: ProjectContext | None = None
    plan_hint: PlanHint | None = None
    """The branch-matched plan found at start; shown, never claimed."""
    store: Store | None = None
    """Where sessions are recorded (None when tracking is disabled)."""

    @property
    def interval(self) -> float:
        """Seconds between background heartbeats."""
        return float(self.config.interval.value)

    def plans(self) -> PlanContext:
        """The active plan (this session's claim, now) and the suggested one."""
        active = self.service.view_self().plan_id if self.service is not None else None
        return PlanContext(
            active=active, suggested=self.plan_hint, plans_dir=str(self.config.plans_dir.value)
        )


def open_runtime(
    flags: Flags,
    env: Mapping[str, str],
    cwd: Path,
    clock: Clock = utc_now,
    probe: ProcessProbe = probe_process,
    branch: Callable[[], str | None] | None = None,
) -> Runtime:
    """Resolve the configuration, prepare the directory and write this session's
    record (adopting one with the same id). ``branch`` gives the git branch of
    ``cwd`` when it was asked already (``host.git.start_git_branch``).

    Raises:
        ConfigError: a bad setting (see ``config.resolve_config``).
        InvalidInputError: a bad ``--session-id`` / ``CLAUDE_CODE_SESSION_ID``.
        StoreError: the directory cannot be created or the record written.
    """
    config = resolve_config(flags, env, cwd)
    monitor = HeartbeatMonitor(clock)
    project = detect_project(Path(config.root.value), cwd)
    hint = suggest_plan(project.branch, list_plans(Path(config.plans_dir.value)))
    if not config.enabled.value:
        return Runtime(
            config=config, service=None, monitor=monitor, project=project, plan_hint=hint
        )
    identity = detect_identity(flags.session_id, env, cwd, config.worktree.value, branch)
    # The store's clock judges liveness; an injected clock (tests) is the store's too.
    store = open_store(config, clock=None if clock is utc_now else clock)
    warnings = store.prepare()
    service = SessionService(
        store,
        identity,
        config.thresholds,
        interval=float(config.interval.value),
        clock=None if clock is utc_now else clock,
        probe=probe,
        tag_kinds=config.tag_kinds.value,
    )
    service.start()
    if service.continues is not None:
        warnings.append(
            f"Session id {service.continues} is in use by another process that may still "
            f"run, so this server runs as session {service.session_id}, which continues it "
            "(previous_session). Claims and heartbeats are recorded under the new id."
        )
    monitor.success()
    return Runtime(
        config=config,
        service=service,
        monitor=monitor,
        store=store,
        warnings=warnings,
        project=project,
        plan_hint=hint,
    )


__all__ = ["Runtime", "open_runtime"]
