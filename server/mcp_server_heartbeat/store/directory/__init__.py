"""The heartbeat directory: the default, embedded store (see :mod:`..store`).

``DirectoryStore`` is imported lazily: the status line reads through
:mod:`.light` and must not load pydantic with the store.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .store import DirectoryStore


def __getattr__(name: str) -> Any:
    if name == "DirectoryStore":
        from .store import DirectoryStore

        return DirectoryStore
    raise AttributeError(name)


__all__ = ["DirectoryStore"]
