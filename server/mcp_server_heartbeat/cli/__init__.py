"""The command line: the server's entry point (:mod:`.main`), the observation
commands (``status``, ``trace``, ``statusline``, ``history``, ``gc``) and the
Claude Code hooks.

Exit codes (every command): 0 success; 1 the store could not be read or
written; 2 a bad flag or configuration value (one line on stderr).
``statusline`` and the hooks exit 0 whatever they find.
"""

PROG = "mcp-server-heartbeat"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

CONFIG_VALUE_FLAGS = (
    "--root",
    "--dir",
    "--scope",
    "--interval",
    "--stale-after",
    "--idle-after",
    "--store",
    "--session-id",
)
"""The shared configuration flags (``args.add_config_flags``), each taking a value."""

__all__ = ["CONFIG_VALUE_FLAGS", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "PROG"]
