"""The human command line: ``status``, ``trace``, ``statusline``, ``history``, ``gc``,
``store migrate|import``.

:func:`register` adds the sub-commands to the CLI parser. Each command module
is imported only when its command runs, and none imports ``mcp``, so the
commands start fast. They resolve the configuration like the server does
(flags > environment > ``.ahrena/.directives`` > defaults) and only read the
heartbeat directory — never creating it — except ``gc``, which removes old
records of ended and dead sessions.

Exit codes: see :mod:`mcp_server_heartbeat.cli`.
"""

from __future__ import annotations

import argparse
from typing import Any

from .args import add_config_flags


def _lazy(module: str, function: str = "run") -> Any:
    """A ``run(args)`` that imports ``module`` (relative to this package, e.g.
    ``".status"``) only when called, then calls ``function``."""

    def run(args: argparse.Namespace) -> int:
        from importlib import import_module

        code: int = getattr(import_module(module, __package__), function)(args)
        return code

    return run


def register(commands: Any) -> None:
    """Add the observation sub-commands to ``commands`` (an argparse sub-parsers action)."""

    status = commands.add_parser(
        "status",
        help="table of sessions and claimed plans",
        description="Show the sessions (status, health, heartbeat age, seconds until stale) "
        "and the claimed plans (holder, fencing token, since). Read-only.",
    )
    add_config_flags(status, sub_command=True)
    status.add_argument("--json", action="store_true", help="print JSON (stable field names)")
    status.add_argument("--all", action="store_true", help="include ended sessions")
    status.set_defaults(run=_lazy(".status"))

    trace = commands.add_parser(
        "trace",
        help="Session Trace of a branch, for a PR body",
        description="The sessions of a branch with their cumulative active time "
        "(sum of started -> last heartbeat), as Markdown for a PR body or JSON. Read-only.",
    )
    add_config_flags(trace, sub_command=True)
    trace.add_argument("--branch", help="the branch (default: the current git branch)")
    trace.add_argument(
        "--format", choices=["markdown", "json"], default="markdown", help="default: markdown"
    )
    trace.set_defaults(run=_lazy(".trace"))

    statusline = commands.add_parser(
        "statusline",
        help="one line for Claude Code's status line (reads its JSON on stdin)",
        description="Read Claude Code's status-line JSON on stdin and print one short line "
        "for that session: its plan, heartbeat age, other live sessions, a lost claim. "
        "Always exits 0.",
    )
    add_config_flags(statusline, sub_command=True)
    statusline.set_defaults(run=_lazy(".statusline"))

    history = commands.add_parser(
        "history",
        help="a plan's events, newest last",
        description="The plan's events from the event log: claims, releases, takeovers "
        "and losses, with fencing tokens. Read-only.",
    )
    add_config_flags(history, sub_command=True)
    history.add_argument("plan_id", metavar="PLAN", help="the plan id, e.g. 043")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(run=_lazy(".history"))

    gc = commands.add_parser(
        "gc",
        help="remove old records of ended and dead sessions",
        description="Remove records of ended and dead sessions last seen longer ago than "
        "--older-than, and older events. Never touches a live or stale session, a claim "
        "holder, or the claim ledgers (fencing tokens).",
    )
    add_config_flags(gc, sub_command=True)
    gc.add_argument(
        "--older-than",
        default="7d",
        metavar="DURATION",
        help="e.g. 7d, 12h, 1h30m, 90s (default: 7d)",
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would be removed")
    gc.add_argument("--json", action="store_true", help="print JSON")
    gc.set_defaults(run=_lazy(".gc"))


def register_store(commands: Any) -> None:
    """Add ``store migrate`` and ``store import DIR`` (team mode, PostgreSQL);
    :mod:`.store_cmd` is imported only when one runs."""
    store = commands.add_parser(
        "store",
        help="PostgreSQL store upkeep (migrate, import)",
        description="Upkeep of the configured PostgreSQL store (--store, HEARTBEAT_STORE or "
        "session_tracking.store). Exit 2 when none is configured.",
    )
    add_config_flags(store, sub_command=True)
    actions = store.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    migrate = actions.add_parser("migrate", help="create or upgrade the schema; print its version")
    add_config_flags(migrate, sub_command=True)
    migrate.set_defaults(run=_lazy(".store_cmd", "run_migrate"))
    imports = actions.add_parser(
        "import",
        help="copy a heartbeat directory's claim ledgers (fencing tokens continue upwards)",
        description="For each plan in DIR the store's fencing token becomes max(store, DIR); "
        "plans held in DIR are imported free (their holders claim again, with larger "
        "tokens). Sessions and events are not copied. Running it twice changes nothing.",
    )
    add_config_flags(imports, sub_command=True)
    imports.add_argument("directory", metavar="DIR", help="the heartbeat directory to import")
    imports.set_defaults(run=_lazy(".store_cmd", "run_import"))


def register_hooks(commands: Any) -> None:
    """Add ``hook session-start``, ``session-end`` (:mod:`.hooks`), ``post-tool-use``,
    ``user-prompt-submit`` (:mod:`.loss_hooks`) and ``subagent-start``
    (:mod:`.subagent_hook`), Claude Code hooks; each module is imported only
    when its hook runs."""

    hook = commands.add_parser(
        "hook",
        help="Claude Code hooks (session-start, session-end, post-tool-use, "
        "user-prompt-submit, subagent-start)",
        description="Run as a Claude Code hook: reads the hook's JSON on stdin, always exits 0.",
    )
    add_config_flags(hook, sub_command=True)
    events = hook.add_subparsers(dest="hook_event", metavar="EVENT", required=True)
    for name, help_text, module, function in HOOK_EVENTS:
        event = events.add_parser(name, help=help_text)
        add_config_flags(event, sub_command=True)
        event.set_defaults(run=_lazy(module, function))


HOOK_EVENTS = (
    (
        "session-start",
        "SessionStart: record the session, print who else is working (hook JSON)",
        ".hooks",
        "run_session_start",
    ),
    (
        "session-end",
        "SessionEnd: end the record and release its claim if no server does",
        ".hooks",
        "run_session_end",
    ),
    (
        "post-tool-use",
        "PostToolUse: tell the conversation once that its claim was taken over (hook JSON)",
        ".loss_hooks",
        "run_post_tool_use",
    ),
    (
        "user-prompt-submit",
        "UserPromptSubmit: tell the conversation once that its claim was taken over",
        ".loss_hooks",
        "run_user_prompt_submit",
    ),
    (
        "subagent-start",
        "SubagentStart: give the subagent the parent's plan, token, branch and the rules",
        ".subagent_hook",
        "run",
    ),
)
"""The ``hook EVENT`` sub-commands: (name, help, module, function run)."""


def register_git(commands: Any) -> None:
    """Add ``git-hook HOOK``, ``verify [RANGE]`` and ``install-git-hooks`` (fenced
    commits); :mod:`.git_cmd` is imported only when one runs."""
    git_hook = commands.add_parser(
        "git-hook",
        help="run as a git hook (installed by install-git-hooks)",
        description="Run as git runs the hook: prepare-commit-msg/commit-msg add the "
        "Heartbeat-Claim trailer for the committing session; pre-commit/pre-push refuse "
        "when its claim was lost. Fails open (exit 0) when the store cannot be read.",
    )
    add_config_flags(git_hook, sub_command=True)
    git_hook.add_argument(
        "git_hook",
        metavar="HOOK",
        choices=["prepare-commit-msg", "commit-msg", "pre-commit", "pre-push"],
        help="prepare-commit-msg | commit-msg | pre-commit | pre-push",
    )
    git_hook.add_argument("hook_args", nargs="*", metavar="ARG", help="git's hook arguments")
    git_hook.set_defaults(run=_lazy(".git_fast"))

    verify = commands.add_parser(
        "verify",
        help="check the Heartbeat-Claim trailers of a range of commits",
        description="Refuse commits whose fencing token was already taken over when they "
        "were made, or was never issued. RANGE defaults to @{upstream}..HEAD, or HEAD "
        "without an upstream. Exit 0 when none is refused, 3 when one is, 1 when the "
        "store or git cannot be read, 2 for a bad flag or range.",
    )
    add_config_flags(verify, sub_command=True)
    verify.add_argument("range", nargs="?", metavar="RANGE", help="a git revision range")
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument(
        "--time",
        choices=["committer", "author"],
        default="author",
        help="which commit time counts as when it was made "
        "(default: author, which a rebase or cherry-pick keeps)",
    )
    verify.set_defaults(run=_lazy(".git_cmd", "run_verify"))

    install = commands.add_parser(
        "install-git-hooks",
        help="install the fenced-commit git hooks (chains existing ones)",
        description="Install prepare-commit-msg, commit-msg, pre-commit and pre-push in the "
        "hooks directory git uses (core.hooksPath honoured; one set for all worktrees). "
        "Existing hooks are kept and run first. Idempotent.",
    )
    install.add_argument(
        "--uninstall", action="store_true", help="remove them and restore chained hooks"
    )
    install.set_defaults(run=_lazy(".git_cmd", "run_install"))


__all__ = ["register", "register_git", "register_hooks", "register_store"]
