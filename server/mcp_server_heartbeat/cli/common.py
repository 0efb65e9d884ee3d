"""What every observation command shares: the configuration, a read-only store,
the reader's view (clock, probe, observer), errors as exit codes, and colour.

No MCP here, and nothing that writes: building a :class:`Reader` resolves the
configuration and names the directory, it never creates it.
"""

from __future__ import annotations

import os
import sys

from ..domain.errors import ConfigError, HeartbeatError, InvalidInputError, StoreError
from ..host.config import resolve_config
from ..host.probe import probe_process
from ..store import open_store
from . import EXIT_ERROR, EXIT_OK, EXIT_USAGE, PROG

TYPE_CHECKING = False
if TYPE_CHECKING:  # status's table loads neither the parser, typing, dataclasses nor pathlib
    import argparse
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import TextIO

    from ..domain.clock import Clock
    from ..domain.liveness import Observer, Thresholds
    from ..host.config import Config, Flags
    from ..host.probe import ProcessProbe
    from ..store import Store


class Reader:
    """A command's view of the heartbeat directory (its attributes as given)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        thresholds: Thresholds,
        observer: Observer,
        clock: Clock,
        probe: ProcessProbe,
    ) -> None:
        self.config = config
        self.store = store
        self.thresholds = thresholds
        self.observer = observer
        self.clock = clock
        self.probe = probe

    @property
    def exists(self) -> bool:
        """True when the store exists (the heartbeat directory was created)."""
        return self.store.exists()


def open_reader(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    flags: Flags | None = None,
) -> Reader:
    """Resolve the configuration as the server does and name the store (read-only).

    Raises:
        ConfigError: a bad setting.
    """
    from ..session.observe import observer_from_env

    env = os.environ if env is None else env
    config = reader_config(args, env, cwd, flags)
    store = open_store(config)
    return Reader(
        config=config,
        store=store,
        thresholds=config.thresholds,
        observer=observer_from_env(env, getattr(args, "session_id", None)),
        clock=store.now,  # liveness is judged with the store's clock
        probe=probe_process,
    )


def reader_config(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    flags: Flags | None = None,
) -> Config:
    """The configuration a command reads with, resolved as the server does.

    Raises:
        ConfigError: a bad setting.
    """
    if flags is None:
        from .args import flags_of

        flags = flags_of(args)
    env = os.environ if env is None else env
    return resolve_config(flags, env, os.getcwd() if cwd is None else cwd)


def guarded(command: str, body: Callable[[], int], err: TextIO | None = None) -> int:
    """Run ``body``; turn our errors into one line on stderr and an exit code:
    2 for a bad value (configuration, input), 1 for storage errors."""
    err = err or sys.stderr
    try:
        return body()
    except (ConfigError, InvalidInputError) as exc:
        print(f"{PROG} {command}: {exc}", file=err)
        return EXIT_USAGE
    except StoreError as exc:
        print(f"{PROG} {command}: {exc}", file=err)
        return EXIT_ERROR
    except HeartbeatError as exc:
        print(f"{PROG} {command}: {exc}", file=err)
        return EXIT_ERROR


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_STYLE = {
    "active": "32",
    "idle": "36",
    "stale": "33",
    "dead": "31",
    "ended": "2",
    "healthy": "32",
    "warning": "33",
    "critical": "31",
    "bold": "1",
    "dim": "2",
}


def paint(text: str, style: str | None, colour: bool) -> str:
    """Wrap ``text`` in the ANSI colour of ``style`` when ``colour`` is on."""
    code = _STYLE.get(style or "")
    if not colour or code is None:
        return text
    return f"\033[{code}m{text}\033[0m"


def table(
    headers: list[str],
    rows: list[list[str]],
    styles: list[list[str | None]] | None = None,
    colour: bool = False,
) -> list[str]:
    """Left-aligned columns separated by two spaces; styles apply per cell."""
    widths = [len(h) for h in headers]
    if all(len(row) == len(headers) for row in rows):
        for i, column in enumerate(zip(*rows, strict=True)):
            widths[i] = max(widths[i], *map(len, column))
    else:
        for row in rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(paint(h.ljust(w), "bold", colour) for h, w in zip(headers, widths, strict=True))
    ]
    if not colour:  # the same cells, without a paint call each
        for row in rows:
            lines.append("  ".join(map(str.ljust, row, widths)).rstrip())
        return [line.rstrip() for line in lines]
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            style = styles[r][i] if styles else None
            cells.append(paint(cell.ljust(widths[i]), style, colour))
        lines.append("  ".join(cells).rstrip())
    return [line.rstrip() for line in lines]


__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "Reader",
    "guarded",
    "open_reader",
    "paint",
    "reader_config",
    "table",
    "use_colour",
]
