"""The heartbeat directory: the default, embedded store (see :mod:`.store`)."""

from .store import DirectoryStore

__all__ = ["DirectoryStore"]
