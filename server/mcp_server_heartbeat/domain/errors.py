"""The errors this package raises below the MCP layer.

Every message is written for the reader who has to act on it (an agent or a
person): it names the bad value, the rule, and what is accepted instead. The
MCP layer turns these into tool errors (``isError``) word for word.
"""

from __future__ import annotations


class HeartbeatError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInputError(HeartbeatError, ValueError):
    """A caller-supplied value broke a documented rule; nothing was changed."""


class ConfigError(HeartbeatError):
    """The configuration cannot be used; raised before the transport opens."""


class StoreError(HeartbeatError):
    """Storage failed (disk full, directory gone, permission); nothing was half-written."""


class StoreBusyError(StoreError):
    """The store's lock could not be taken in time; nothing was changed. Retry shortly."""


class TrackingDisabledError(HeartbeatError):
    """Session tracking is switched off for this project (``session_tracking.enabled: false``)."""


__all__ = [
    "ConfigError",
    "HeartbeatError",
    "InvalidInputError",
    "StoreBusyError",
    "StoreError",
    "TrackingDisabledError",
]
