"""``store migrate`` and ``store import DIR``: the PostgreSQL store's upkeep.

``store migrate`` opens the configured PostgreSQL store (``--store``,
``HEARTBEAT_STORE`` or ``session_tracking.store``), applies pending
migrations and prints the schema version. ``store import DIR`` copies the claim
ledgers of the heartbeat directory ``DIR`` into it so fencing tokens continue
upwards (:mod:`~mcp_server_heartbeat.store.transfer`: plans held in ``DIR`` are
imported free; idempotent). Both exit 2, with one line on stderr, when no
PostgreSQL store is configured; 1 when the store cannot be used (or a plan
could not be imported); 0 otherwise. The URL is only ever shown without its
password.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from ..domain.errors import ConfigError
from ..host.config import Config, Setting, StoreSetting, resolve_config
from ..store import DIRECTORY_SCHEME, Store, open_store
from ..store.transfer import ImportReport, import_claims
from ..store.urls import is_postgres_url, redact_url
from . import EXIT_ERROR, EXIT_OK
from .args import flags_of
from .common import guarded

NO_STORE = (
    "no PostgreSQL store is configured: give --store postgresql://..., set "
    "HEARTBEAT_STORE, or session_tracking.store in .ahrena/.directives "
    "(the heartbeat directory needs no {what})"
)


def _postgres_config(args: argparse.Namespace, what: str) -> Config:
    """The configuration, which must select a PostgreSQL store (else ConfigError)."""
    config = resolve_config(flags_of(args), os.environ, Path.cwd())
    if not is_postgres_url(config.store.value):
        raise ConfigError(NO_STORE.format(what=what))
    return config


def _close(store: Store) -> None:
    close: Any = getattr(store, "close", None)
    if callable(close):
        close()


def run_migrate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``store migrate``: apply pending migrations, print the schema version."""
    out = out or sys.stdout

    def body() -> int:
        config = _postgres_config(args, "migration")
        store = open_store(config)
        try:
            version = store.migrate()  # type: ignore[attr-defined]
        finally:
            _close(store)
        print(
            f"{redact_url(config.store.value)} schema {config.schema.value}: at version {version}",
            file=out,
        )
        return EXIT_OK

    return guarded("store migrate", body)


def run_import(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``store import DIR``: copy DIR's claim ledgers into the PostgreSQL store."""
    out = out or sys.stdout

    def body() -> int:
        config = _postgres_config(args, "import")
        directory = Path(os.path.expanduser(args.directory)).absolute()
        if not directory.is_dir():
            raise ConfigError(f"DIR {args.directory!r} is not a directory")
        source = open_store(
            config._replace(
                directory=Setting(str(directory), "argument DIR"),
                store=StoreSetting(None, "argument DIR"),
            ),
            url=f"{DIRECTORY_SCHEME}://",
        )
        target = open_store(config)
        try:
            target.prepare()
            report = import_claims(source, target, str(directory))
        finally:
            _close(target)
        _print_report(report, directory, redact_url(config.store.value), config, out)
        return EXIT_ERROR if report.count("conflict") else EXIT_OK

    return guarded("store import", body)


def _print_report(
    report: ImportReport, directory: Path, where: str, config: Config, out: TextIO
) -> None:
    for plan in report.plans:
        if plan.action == "imported":
            line = (
                f"plan {plan.plan_id}: fencing token {plan.target_before or 0} -> "
                f"{plan.target_after}"
            )
        elif plan.action == "imported_released":
            line = (
                f"plan {plan.plan_id}: fencing token {plan.target_before or 0} -> "
                f"{plan.target_after}, imported free (held in the directory by "
                f"{plan.source_holder}; it must claim again, with a larger token)"
            )
        elif plan.action == "unchanged":
            line = (
                f"plan {plan.plan_id}: unchanged (token {plan.target_before} in the store, "
                f"{plan.source_token} in the directory)"
            )
        else:
            line = (
                f"plan {plan.plan_id}: NOT imported: held in the store by {plan.target_holder} "
                f"with token {plan.target_before}, below the directory's {plan.source_token}; "
                "release it there and import again"
            )
        print(line, file=out)
    print(
        f"{len(report.plans)} plan(s) from {directory} into {where} "
        f"(project {config.project.value}): {report.count('imported')} imported, "
        f"{report.count('imported_released')} imported free, "
        f"{report.count('unchanged')} unchanged, {report.count('conflict')} conflict(s)",
        file=out,
    )


__all__ = ["run_import", "run_migrate"]
