"""One QuickBooks version in, the host row out: the entry point every QBO answer about a linked record goes through.

A pull, a push's own answer, a record found again by natural key, the current version read after a stale-object
error (5010), a merge survivor and a reconciliation repull all hand the QBO payload to :func:`apply_qbo_version`
(customers and items) or :func:`apply_payment_state` (an invoice's payment state). Either one, keyed on realm +
entity + QBO id through the mapping:

* merges the version with the host row against the last-synced snapshot (three-way, ``qbo_sync.mapping.merge``),
  records every conflict, keeps held fields held (:mod:`qbo_sync.services.held`);
* writes the host what it lacks through the adapter (marked as a QuickBooks change, so it never echoes back);
* records the version on the mapping (id, SyncToken, snapshot, the payload as received);
* never sends anything and never queues anything. What QuickBooks still lacks is in the :class:`Applied` result:
  the push sends it through its normal path, the pull queues a push of it.

Applying the same version twice changes nothing: a version already recorded (same QBO id and SyncToken, no open
conflict) is skipped unless the caller asks again (the host changed QuickBooks-owned fields since).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction

from qbo_sync.adapters import HostAdapter, InvoiceAdapterMixin
from qbo_sync.conf import host_label, qbo_settings
from qbo_sync.mapping import get_mapper, merge
from qbo_sync.mapping import invoices as invoice_rules
from qbo_sync.mapping import payments as payment_rules
from qbo_sync.mapping.base import MappingError
from qbo_sync.models import EntityMapping, SyncLog
from qbo_sync.services import mappings as maps
from qbo_sync.services.context import SyncContext
from qbo_sync.services.echo import applying_qbo_changes
from qbo_sync.services.held import held_conflicts, held_fields, track_values


@dataclass(frozen=True)
class Applied:
    """What applying one QBO version did."""

    #: Fields written to the host row.
    to_host: tuple[str, ...] = ()
    #: Fields QuickBooks still lacks (the host's newer values): the push sends them, the pull queues a push.
    to_qbo: tuple[str, ...] = ()
    #: Fields a conflict was recorded for (resolved by a rule, or open and waiting for a person).
    conflicts: tuple[str, ...] = ()
    #: Fields held by an open conflict after this version: neither side is written for them.
    held: tuple[str, ...] = ()
    #: The version was applied already: nothing was done.
    skipped: bool = False


def critical_fields(entity: str) -> frozenset[str]:
    """The fields ``QBO_SYNC["CRITICAL_FIELDS"]`` names for ``entity`` (a conflict on one waits for a person)."""
    return frozenset((qbo_settings.CRITICAL_FIELDS or {}).get(entity, ()))


def already_applied(mapping: EntityMapping, payload: dict[str, Any]) -> bool:
    """This QBO version is the one the mapping recorded last (and no open conflict still tracks it)."""
    return (mapping.pk is not None and bool(mapping.sync_token) and mapping.qbo_id == str(payload.get("Id"))
            and mapping.sync_token == str(payload.get("SyncToken"))
            and mapping.state != EntityMapping.State.CONFLICT)


def apply_qbo_version(ctx: SyncContext, adapter: HostAdapter, mapping: EntityMapping, obj: models.Model,
                      payload: dict[str, Any], *, again: bool = False) -> Applied:
    """Merge one QBO version of a linked customer or item into its host row; returns what it did.

    ``mapping.qbo_id`` must name ``payload``'s record. ``again``: merge even a version already recorded (used when
    the host changed only QuickBooks-owned fields: QuickBooks' values go back though its version is unchanged).
    """
    if not again and already_applied(mapping, payload):
        return Applied(skipped=True)
    mapper = get_mapper(adapter.entity)
    spec = mapper.SPEC
    qbo_values = mapper.from_qbo(payload)
    host_values = adapter.to_values(obj)
    held = held_fields(mapping)
    result = merge(spec, mapping.snapshot or None, host_values, qbo_values,
                   host_updated_at=adapter.updated_at(obj), qbo_updated_at=mapper.qbo_updated_at(payload),
                   critical_fields=critical_fields(adapter.entity) | spec.critical_fields, held=frozenset(held))
    with transaction.atomic():
        if result.to_host:
            with applying_qbo_changes():
                adapter.apply_values(obj, result.to_host)
        snapshot = dict(result.new_base)
        for name in result.to_qbo:
            snapshot[name] = qbo_values[name]  # QBO does not hold it yet: the next write sends the difference
        state = EntityMapping.State.CONFLICT if result.held or held else EntityMapping.State.SYNCED
        maps.record_synced(mapping, payload, snapshot, qbo_updated_at=mapper.qbo_updated_at(payload),
                           host_updated_at=adapter.updated_at(obj), pulled=True, state=state)
        maps.record_conflicts(mapping, result.conflicts)
        if held:  # a held field both sides now agree on raises no conflict: its open one still shows them as now
            track_values(held_conflicts([mapping.pk]).get(mapping.pk, {}), host_values, qbo_values)
    if result.to_host:
        from qbo_sync.signals import entity_pulled

        entity_pulled.send(sender=EntityMapping, entity_type=adapter.entity, object_id=mapping.object_id,
                           fields=sorted(result.to_host))
    return Applied(to_host=tuple(sorted(result.to_host)), to_qbo=tuple(sorted(result.to_qbo)),
                   conflicts=tuple(c.field for c in result.conflicts),
                   held=tuple(sorted({c.field for c in result.held} | set(held))))


def apply_payment_state(ctx: SyncContext, adapter: InvoiceAdapterMixin, mapping: EntityMapping, obj: models.Model,
                        invoice: dict[str, Any], payments: Sequence[dict[str, Any]] = (), *,
                        record_version: bool = True, refunded: Decimal | None = None) -> bool:
    """Write the payment state one QBO invoice answer carries onto its host invoice (``apply_payment_state`` of the
    adapter, with the values of ``qbo_sync.mapping.payments.payment_state``).

    Every answer that carries an invoice's ``Balance`` goes through here: a pull, the push's own answer (Balance =
    TotalAmt: nothing paid yet), a create found again after a lost answer, a void. So a host whose new invoices
    start at amount due 0 learns the balance at once, not only when a payment bumps the SyncToken. Returns False
    when the answer holds no usable payment state (logged). ``record_version``: also store its SyncToken.
    Idempotent: the adapter writes only what changed.
    """
    state = _payment_state(ctx, mapping, invoice, payments, refunded)
    if state is None:
        return False
    if record_version and state["payment_status"] == "void" and not adapter.is_void(obj):
        maps.log(ctx.organization_id, "voided_in_qbo", f"Invoice {invoice.get('DocNumber')} was voided in "
                 f"QuickBooks, not in {host_label()}", level=SyncLog.Level.WARNING, entity_type="Invoice",
                 object_id=mapping.object_id, qbo_id=invoice.get("Id"), job_id=ctx.job_id)
    with transaction.atomic(), applying_qbo_changes():
        adapter.apply_payment_state(obj, state)
        if record_version and mapping.pk is not None:
            maps.record_version(mapping, invoice, qbo_updated_at=invoice_rules.qbo_updated_at(invoice))
    return True


def apply_payment_state_many(ctx: SyncContext, adapter: InvoiceAdapterMixin,
                             answers: Sequence[tuple[EntityMapping, models.Model, dict[str, Any]]]) -> None:
    """``apply_payment_state`` (without recording the version) for the answers QuickBooks gave to a pushed chunk,
    through the adapter's ``apply_payment_states``: a host that overrides it writes the chunk in a few UPDATEs
    instead of a save per invoice (docs/performance.md, "Our CPU per written invoice")."""
    pairs = []
    for mapping, obj, invoice in answers:
        state = _payment_state(ctx, mapping, invoice, (), None)
        if state is not None:
            pairs.append((obj, state))
    if pairs:
        with transaction.atomic(), applying_qbo_changes():
            adapter.apply_payment_states(pairs)


def _payment_state(ctx: SyncContext, mapping: EntityMapping, invoice: dict[str, Any],
                   payments: Sequence[dict[str, Any]], refunded: Decimal | None) -> dict[str, Any] | None:
    """The payment state a QBO invoice answer carries, or None (logged) when it holds none usable."""
    try:
        return payment_rules.payment_state(invoice, list(payments), ctx.today, refunded=refunded)
    except MappingError as exc:
        maps.log(ctx.organization_id, "payment_state_error", f"Invoice {invoice.get('Id')}: {exc}",
                 level=SyncLog.Level.WARNING, entity_type="Invoice", object_id=mapping.object_id,
                 qbo_id=invoice.get("Id"), job_id=ctx.job_id)
        return None


__all__ = ["Applied", "already_applied", "apply_payment_state", "apply_payment_state_many", "apply_qbo_version",
           "critical_fields"]
