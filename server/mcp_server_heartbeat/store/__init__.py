"""The storage seam: everything the service needs from storage, and nothing more.

The service, the hooks and every CLI command get their store from
:func:`open_store`, the one place a backend is chosen; nothing outside this
package names a concrete store. Backends: the heartbeat directory
(``store/directory``, the default and embedded one), PostgreSQL
(``store/postgres``, team mode: sessions on several machines; a transaction is
a database transaction, the records are rows, "now" the database's clock) and
:mod:`.memory` (the executable reference and test double).

Contract every implementation keeps (proven by ``tests/contract``):

* :meth:`Store.transaction` is a unit of work, exclusive across every process
  sharing the store: a claim, release, takeover, start or end reads and writes
  ledger, record and event inside one, and it commits all or nothing. It
  raises :class:`~mcp_server_heartbeat.domain.errors.StoreBusyError` after its
  timeout and is not re-entrant (a second transaction in the same thread
  raises RuntimeError). Reads inside it see its own writes. An exception inside
  the block discards every write.
* The commit point is the claim ledgers (or, when none was written, the
  session records): if it fails, :class:`~.StoreError` is raised and nothing
  is written. What follows it (session records, events) may fail without
  undoing the claim; the failure is logged and the next heartbeat repairs the
  record. A database commits it all at once.
* A write is atomic: a reader sees the old record or the new one, never a mix.
* Readers (``read_*``, ``list_*``, ``iter_*``, ``plan_history``) never modify
  the store and need no transaction.
* A claim ledger's ``fencing_token`` never goes down.
* The event log is append-only; only ``prune_events`` (``gc``) shortens it.
* :meth:`Store.now` is the clock liveness is judged with (the local clock for
  the directory, the database's clock for a database).
"""

from __future__ import annotations

from .urls import POSTGRES_SCHEMES

TYPE_CHECKING = False
if TYPE_CHECKING:  # the status line imports this package: neither pydantic nor typing
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from datetime import datetime
    from typing import Any, Protocol

    from ..domain.clock import Clock
    from ..domain.models import ClaimRecord, Event, SessionRecord, Unreadable
    from ..host.config import Config
else:  # typing Protocols for type checkers, plain base classes at run time
    Protocol = object

DIRECTORY_SCHEME = "directory"
"""The default backend: the heartbeat directory named by the configuration."""
ACCEPTED_SCHEMES = (DIRECTORY_SCHEME, *POSTGRES_SCHEMES)


class Transaction(Protocol):
    """One unit of work (see :meth:`Store.transaction`): writes are buffered and
    applied together at commit; reads see this transaction's own writes."""

    def now(self) -> datetime:
        """The store's clock (aware UTC): the "now" of every judgment in this unit."""
        ...

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The session's record as this transaction sees it, or None when missing
        or unreadable."""
        ...

    def write_session(self, record: SessionRecord) -> None:
        """Create or replace the session's record at commit."""
        ...

    def delete_session(self, session_id: str) -> bool:
        """Remove the session's record at commit (``gc``, the discard rule); False
        if it is already gone. Claim ledgers are never deleted."""
        ...

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The plan's claim ledger as this transaction sees it, or None if the plan
        was never claimed. Raises StoreError when it exists but cannot be read."""
        ...

    def write_claim(self, claim: ClaimRecord) -> None:
        """Create or replace the plan's ledger at commit (the commit point).
        Raises StoreError when it would lower the plan's fencing token."""
        ...

    def append_event(self, event: Event) -> None:
        """Append one event to the log at commit, after the change it records."""
        ...


class ClaimWatch(Protocol):
    """A watch of one plan's ledger (:meth:`Store.watch_claim`); a hint only."""

    def wait(self, timeout: float) -> bool:
        """Block at most ``timeout`` seconds: True when the ledger (probably)
        changed since the last call, False on timeout. Never raises."""
        ...

    def close(self) -> None:
        """Release what the watch holds (a connection); idempotent."""
        ...


class Store(Protocol):
    """Where session records, claim ledgers and events live (see module doc)."""

    @property
    def location(self) -> str:
        """A human-readable address of the store (a directory path, a DSN without secrets)."""
        ...

    def prepare(self) -> list[str]:
        """Create the layout (directory, schema) if missing; returns warnings for a
        person, empty when all is well. Raises StoreError."""
        ...

    def exists(self) -> bool:
        """False when nothing was ever recorded (readers then show an empty store)."""
        ...

    def now(self) -> datetime:
        """The store's clock (aware UTC), for liveness judgments."""
        ...

    def transaction(self, timeout: float | None = None) -> AbstractContextManager[Transaction]:
        """An exclusive unit of work, waiting at most ``timeout`` seconds (None:
        the store's default) for other units. Commits on normal exit, discards
        on exception. Raises StoreBusyError on timeout, StoreError when the
        commit point fails, RuntimeError when re-entered in one thread."""
        ...

    def busy_holder(self, wait: float = 0.0) -> dict[str, Any] | None:
        """Who holds the store's exclusive section now, or None when nobody does
        (or after ``wait`` seconds nobody still does), or when the store cannot
        tell: the backend's facts (e.g. ``pid``, ``session_id``) and
        ``description``, a sentence for a person (with how to resume a stopped
        holder). Informational (``status``); never needed for correctness."""
        ...

    def read_session(self, session_id: str) -> SessionRecord | None:
        """The session's committed record, or None when missing or unreadable."""
        ...

    def list_sessions(self) -> tuple[list[SessionRecord], list[Unreadable]]:
        """Every readable session record, and what could not be read (and why)."""
        ...

    def read_claim(self, plan_id: str) -> ClaimRecord | None:
        """The plan's claim ledger, or None if never claimed. Raises StoreError
        when it exists but cannot be read."""
        ...

    def iter_claims(self) -> Iterator[ClaimRecord]:
        """Every readable claim ledger (held or free)."""
        ...

    def read_events(self) -> list[Event]:
        """Every readable event, oldest first."""
        ...

    def plan_history(self, plan_id: str, limit: int | None) -> list[Event]:
        """The ``limit`` most recent events of ``plan_id`` (None: all), oldest first,
        without reading more of the log than that needs."""
        ...

    def count_plan_events(self, plan_id: str, kinds: frozenset[str]) -> int:
        """How many events of ``plan_id`` of the given kinds the log holds (e.g.
        :data:`~mcp_server_heartbeat.domain.models.TRANSITIONS`)."""
        ...

    def unreadable_events(self) -> int:
        """How many entries of the event log cannot be read (torn, foreign); 0 for
        a store that cannot hold such entries."""
        ...

    def prune_events(self, before: datetime, dry_run: bool = False) -> int:
        """Drop events older than ``before`` (UTC), exclusive with transactions (do
        not call inside one); returns how many were (or would be) dropped.
        Raises StoreError, StoreBusyError."""
        ...

    def wait_for_change(self, timeout: float) -> bool:
        """Block at most ``timeout`` seconds for a hint that a claim of this project
        changed: True when woken by one (a hint only: re-read the store), False on
        timeout. Never raises (a fault is a timeout). A store that cannot hear
        changes (the directory, memory) sleeps ``timeout`` and returns False; one
        that can sets ``wakes_on_change = True``."""
        ...

    def watch_claim(self, plan_id: str) -> ClaimWatch:
        """A watch of ``plan_id``'s ledger from now on (``wait_for_plan``): its
        ``wait`` returns soon after the ledger changes. The directory polls the
        ledger file's stat every 0.1 s; PostgreSQL LISTENs on a connection of
        the watch's own (open before this returns); memory counts commits.
        Raises InvalidInputError for a plan id unsafe as a name, nothing else: a
        watch that cannot hear changes (database down) sleeps its timeouts."""
        ...

    def prune_temp_files(self, before: datetime, dry_run: bool = False) -> list[str]:
        """Remove the debris of writes killed before they completed, last modified
        before ``before`` (UTC), exclusive with transactions (do not call inside
        one); returns their names. A store with no such debris returns []."""
        ...


class LightReader(Protocol):
    """The pydantic-free read path of the status line (runs on every refresh) and
    of the loss hooks (run after every tool call)."""

    def session_records(self) -> list[dict[str, Any]]:
        """Every readable session record as a plain dict; unreadable ones skipped.
        Never writes, never blocks, never raises for a missing store."""
        ...

    def claim(self, plan_id: str) -> dict[str, Any] | None:
        """The plan's claim ledger as a plain dict, or None when never claimed,
        unreadable or unreachable. Never writes, never raises."""
        ...

    def plan_events(self, plan_id: str, kinds: frozenset[str]) -> list[dict[str, Any]]:
        """The plan's events whose ``event`` kind is in ``kinds``, oldest first, as
        plain dicts; unreadable ones skipped. Never writes, never raises."""
        ...

    def now(self) -> datetime:
        """The store's clock (aware UTC), as :meth:`Store.now`."""
        ...


def store_scheme(url: str | None) -> str:
    """The backend a store URL names: ``directory`` for None (the configuration's
    heartbeat directory) or a ``directory`` URL; otherwise the URL's scheme
    (``postgresql`` or ``postgres``), lower-cased.

    Raises:
        ConfigError: a scheme this version cannot open, naming the accepted ones.
    """
    if url is None:
        return DIRECTORY_SCHEME
    scheme = url.split("://", 1)[0].lower() if "://" in url else url.lower()
    if scheme not in ACCEPTED_SCHEMES:
        _unknown(url, scheme)
    return scheme


def configured_url(config: Config, url: str | None = None) -> str | None:
    """The store URL to open: ``url`` when given, else the configuration's
    ``store`` setting (None: the heartbeat directory)."""
    if url is not None:
        return url
    setting = getattr(config, "store", None)
    value = getattr(setting, "value", setting)
    return value if isinstance(value, str) and value else None


def configured_project(config: Config, project: str | None = None) -> str:
    """The project key partitioning a shared store: ``project`` when given, else
    the configuration's ``project`` setting.

    Raises:
        ConfigError: neither gives one.
    """
    if project is None:
        setting = getattr(config, "project", None)
        project = getattr(setting, "value", setting)
    if isinstance(project, str) and project:
        return project
    from ..domain.errors import ConfigError

    raise ConfigError(
        "a PostgreSQL store needs a project key: set HEARTBEAT_PROJECT or "
        "session_tracking.project in .ahrena/.directives, or run it in a git repository"
    )


def configured_schema(config: Config) -> str:
    """The PostgreSQL schema the configuration names (``schema``), else ``heartbeat``."""
    schema = getattr(getattr(config, "schema", None), "value", None)
    return schema if isinstance(schema, str) and schema else "heartbeat"


def open_store(
    config: Config,
    clock: Clock | None = None,
    lock_timeout: float | None = None,
    url: str | None = None,
    project: str | None = None,
) -> Store:
    """The store to use: the one place a backend is chosen.

    The heartbeat directory ``config`` names, unless the store URL (``url``, else
    the configuration's ``store`` setting) starts with ``postgresql://`` or
    ``postgres://``: then the PostgreSQL store, partitioned by ``project`` (else
    the configuration's ``project`` key), imported only then (psycopg is an
    optional extra). Construction connects to nothing and writes nothing;
    :meth:`Store.prepare` creates the layout (the schema).

    Args:
        clock: the store's clock for liveness judgments (default: the system's
            UTC clock, the database's for PostgreSQL); tests inject a fake one.
        lock_timeout: the default wait of :meth:`Store.transaction`, seconds.
        url: a store URL; None for the configuration's.
        project: the project key of a shared store; None for the configuration's.

    Raises:
        ConfigError: the URL names a store this version cannot open, or a
            PostgreSQL store has no project key, or psycopg is not installed.
    """
    url = configured_url(config, url)
    scheme = store_scheme(url)
    if scheme == DIRECTORY_SCHEME:
        from .directory.store import DirectoryStore

        options: dict[str, Any] = {}
        if clock is not None:
            options["clock"] = clock
        if lock_timeout is not None:
            options["lock_timeout"] = lock_timeout
        return DirectoryStore(config.dir_path, **options)
    if scheme in POSTGRES_SCHEMES and url is not None:
        postgres = _postgres_store_class()
        pg_options: dict[str, Any] = {}
        if clock is not None:
            pg_options["clock"] = clock
        if lock_timeout is not None:
            pg_options["lock_timeout"] = lock_timeout
        pg_options["schema"] = configured_schema(config)
        return postgres(url, configured_project(config, project), **pg_options)
    return _unknown(url or "", scheme)  # pragma: no cover - store_scheme refused it


def _postgres_store_class() -> Any:
    """:class:`~.postgres.PostgresStore`, imported now (psycopg loads with it).

    Raises:
        ConfigError: psycopg is not installed, naming the extra to install.
    """
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        from ..domain.errors import ConfigError

        raise ConfigError(
            f"a postgresql:// store needs psycopg 3 and psycopg-pool ({exc}); install "
            "them with: pip install 'mcp-server-heartbeat[postgres]'"
        ) from exc
    return PostgresStore


def open_light_reader(config: Config, url: str | None = None) -> LightReader:
    """The pydantic-free reader of the store (see :func:`open_store`), for the status line.

    For the heartbeat directory: a reader of its files. For a database there is
    no lighter path than the store itself: its records, as plain dicts.

    Raises:
        ConfigError: the URL names a store this version cannot open.
    """
    url = configured_url(config, url)
    scheme = store_scheme(url)
    if scheme == DIRECTORY_SCHEME:
        from .directory.light import LightDirectoryReader

        return LightDirectoryReader(config.directory.value)
    if scheme in POSTGRES_SCHEMES and url is not None:
        from .postgres.light import LightPostgresReader

        return LightPostgresReader(url, configured_project(config), configured_schema(config))
    return _unknown(url or "", scheme)  # pragma: no cover - store_scheme refused it


def read_plain_records(
    config: Config,
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]] | None:
    """``(location, records, ledgers)``: the store's location (as
    :meth:`Store.location` names it) and every session record and claim ledger
    of the configured heartbeat
    directory as plain dicts, without pydantic and without the lock, when each
    file is plainly one the store reads the same way
    (:func:`~.directory.plain.read_plain`); None when the store itself must read
    (a database store, no directory, a file it cannot vouch for, the lock held).
    ``status``'s table uses it."""
    if store_scheme(configured_url(config)) != DIRECTORY_SCHEME:
        return None
    from .directory.plain import read_plain

    directory = config.directory.value
    found = read_plain(directory)
    return None if found is None else (directory, *found)


def _unknown(url: str, scheme: str) -> Any:
    from ..domain.errors import ConfigError

    # Only the scheme is named: a URL may carry a password.
    raise ConfigError(
        f"store scheme {scheme!r} is not accepted: use the heartbeat directory (no store "
        f"URL, or 'directory') or a PostgreSQL URL (postgresql://user@host/db); accepted "
        f"schemes: {', '.join(repr(name) for name in ACCEPTED_SCHEMES)}"
    )


__all__ = [
    "ACCEPTED_SCHEMES",
    "POSTGRES_SCHEMES",
    "ClaimWatch",
    "LightReader",
    "Store",
    "Transaction",
    "configured_project",
    "configured_url",
    "open_light_reader",
    "open_store",
    "read_plain_records",
    "store_scheme",
]
