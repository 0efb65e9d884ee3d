"""Job-control signals: a server never stops on them.

Ctrl-Z in the terminal running the client sends SIGTSTP to the whole
foreground process group, which includes this server. A server stopped while
its background heartbeat holds the heartbeat directory's lock would freeze
every other session's claim, release and heartbeat until the user resumes it
(fault round two). The server has no terminal of its own to give back, so it
ignores SIGTSTP, SIGTTIN and SIGTTOU; the client stops, the server keeps
serving (and idles, as nothing calls it). SIGSTOP cannot be ignored: for that
case the "stayed locked" error and ``status`` name the stopped holder
(``store/lockholder.py``).
"""

from __future__ import annotations

import signal

JOB_CONTROL_SIGNALS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def ignore_job_control() -> None:
    """Ignore SIGTSTP, SIGTTIN and SIGTTOU in this process (the real server only:
    in-process test clients must not change the test runner's signals)."""
    for signum in JOB_CONTROL_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


__all__ = ["JOB_CONTROL_SIGNALS", "ignore_job_control"]
