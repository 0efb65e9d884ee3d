"""This process's space, as proof of death needs it: the host's name, the
kernel boot, the PID and time namespaces, and the observer standing in them.

A PID names one process only inside one PID namespace of one boot of one
host, so proof of death needs all four to match the reader's (``liveness``);
``CLOCK_BOOTTIME`` readings compare only within one boot and time namespace.
The three kernel facts are read once per process.

The light part of :mod:`.identity` (which imports it): the status line, the
hooks and ``status`` observe from here without loading what the server's start
needs (``dataclasses``, ``socket``, ``uuid``, git).
"""

from __future__ import annotations

import functools
import os

from ..domain.clock import boottime_now
from ..domain.liveness import Observer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..domain.clock import BootClock

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def host_name() -> str:
    """This host's name, as ``socket.gethostname()`` gives it: the kernel's node
    name (``uname -n``; ``gethostname(2)`` reads the same field), without
    importing ``socket``. Every record's ``host`` and every observer's come from here."""
    return os.uname().nodename


@functools.cache
def read_boot_id() -> str | None:
    """This kernel boot's id (a UUID that changes at every boot), or None where
    ``/proc`` does not give it (not Linux, /proc not mounted). Read once."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as file:
            text = file.read(64).strip()
    except (OSError, ValueError):
        return None
    return text or None


def _namespace(kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/ns/{kind}")
    except OSError:
        return None


@functools.cache
def read_pid_namespace() -> str | None:
    """This process's PID namespace, e.g. ``pid:[4026531836]``, or None. Read once."""
    return _namespace("pid")


@functools.cache
def read_time_namespace() -> str | None:
    """This process's time namespace, e.g. ``time:[4026531834]``, or None (kernels
    before 5.6 have none: boot-time clocks then carry no offset). Read once."""
    return _namespace("time")


def observer_here(
    session_id: str | None,
    host: str | None = None,
    client_pid: int | None = None,
    previous_session: str | None = None,
    boottime: BootClock | None = boottime_now,
) -> Observer:
    """An observer in this process's space: its host (default: this host's name,
    :func:`host_name`), boot, PID and time namespaces (read once per process), so
    the records of this space can be proven dead and the others are remote
    (design: proof of death)."""
    return Observer(
        session_id=session_id,
        host=host_name() if host is None else host,
        client_pid=client_pid,
        previous_session=previous_session,
        boot_id=read_boot_id(),
        pid_namespace=read_pid_namespace(),
        time_namespace=read_time_namespace(),
        boottime=boottime,
    )


__all__ = [
    "BOOT_ID_PATH",
    "host_name",
    "observer_here",
    "read_boot_id",
    "read_pid_namespace",
    "read_time_namespace",
]
