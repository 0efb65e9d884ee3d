"""Copy a heartbeat directory's claim ledgers into another store (``store import``).

For every plan the source knows — its claim ledger, and its events as a
safety net for a ledger that cannot be read — the target's ledger ends with
fencing token ``max(target, source)``: tokens continue upwards, never restart
at 1, never go down. A plan held in the source is imported **free** (released,
its token kept): its holder is a session of the directory, which the target
does not know, so the next claim in the target gets a larger token and fences
out anything the old holder still writes. A plan the target already holds with
a smaller token is left alone and reported as a conflict (raising the token
under a live holder would invalidate its claim): release it there, then import
again. Sessions and events are not copied. Running it twice changes nothing:
a plan whose target token is already at least the source's is left as it is.
Written against the :class:`~mcp_server_heartbeat.store.Store` protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..domain.lease import released_ledger
from ..domain.models import ClaimRecord

if TYPE_CHECKING:
    from . import Store

Action = Literal["imported", "imported_released", "unchanged", "conflict"]

IMPORT_REASON = "imported from the heartbeat directory {source}; held there by {holder}"


@dataclass(frozen=True)
class PlanImport:
    """What happened to one plan: ``action``, the source's and the target's token
    before, and the target's token after."""

    plan_id: str
    action: Action
    source_token: int
    target_before: int | None
    target_after: int | None
    source_holder: str | None = None
    target_holder: str | None = None


@dataclass
class ImportReport:
    """Every plan's :class:`PlanImport`, sorted by plan id."""

    plans: list[PlanImport] = field(default_factory=list)

    def count(self, action: Action) -> int:
        """How many plans ended with ``action``."""
        return sum(1 for plan in self.plans if plan.action == action)


def source_tokens(source: Store) -> dict[str, tuple[int, ClaimRecord | None]]:
    """Each plan's highest fencing token in ``source`` (ledger or events) and its
    ledger (None when only events name the plan)."""
    found: dict[str, tuple[int, ClaimRecord | None]] = {}
    for ledger in source.iter_claims():
        found[ledger.plan_id] = (ledger.fencing_token, ledger)
    for event in source.read_events():
        if event.plan_id is None or event.fencing_token is None:
            continue
        token, ledger = found.get(event.plan_id, (0, None))
        found[event.plan_id] = (max(token, event.fencing_token), ledger)
    return found


def import_claims(source: Store, target: Store, source_name: str) -> ImportReport:
    """Raise every plan's token in ``target`` to at least the source's (see module
    doc), one transaction per plan. ``source_name`` names the source in the
    release reason. Raises StoreError / StoreBusyError from the target (plans
    already done stay done: importing again continues)."""
    report = ImportReport()
    for plan_id, (token, ledger) in sorted(source_tokens(source).items()):
        holder = ledger.holder if ledger is not None else None
        with target.transaction() as tx:
            current = tx.read_claim(plan_id)
            before = None if current is None else current.fencing_token
            if current is not None and current.fencing_token >= token:
                action: Action = "unchanged"
                after = before
            elif current is not None and current.holder is not None:
                action, after = "conflict", before
            else:
                base = ledger or ClaimRecord(plan_id=plan_id, fencing_token=token)
                record = base.model_copy(update={"fencing_token": token})
                if record.holder is not None:
                    record = released_ledger(
                        record,
                        tx.now(),
                        IMPORT_REASON.format(source=source_name, holder=record.holder),
                    )
                    action = "imported_released"
                else:
                    action = "imported"
                tx.write_claim(record)
                after = token
        report.plans.append(
            PlanImport(
                plan_id=plan_id,
                action=action,
                source_token=token,
                target_before=before,
                target_after=after,
                source_holder=holder,
                target_holder=None if current is None else current.holder,
            )
        )
    return report


__all__ = ["ImportReport", "PlanImport", "import_claims", "source_tokens"]
