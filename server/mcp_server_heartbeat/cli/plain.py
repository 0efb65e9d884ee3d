"""Values of plain JSON records (the pydantic-free read path of the status line
and the hooks): each returns the value when it has the expected JSON type, else
None, so a field of the wrong type counts as missing, never as an error."""

from __future__ import annotations

import math

from ..domain.clock import parse_utc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any


def as_str(value: Any) -> str | None:
    """A JSON string, else None."""
    return value if isinstance(value, str) else None


def as_float(value: Any) -> float | None:
    """A finite JSON number (not a boolean) as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def as_int(value: Any) -> int | None:
    """A JSON integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_time(value: Any) -> datetime | None:
    """A timestamp in the records' form (ISO 8601, UTC) as an aware datetime, else None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


__all__ = ["as_float", "as_int", "as_str", "as_time"]
