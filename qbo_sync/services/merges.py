"""Customer merges in QuickBooks: which customer survived, and re-linking (or flagging) the host row.

When the accountant merges customer A into B, QuickBooks moves A's transactions to B and deletes A. A ``Merge``
webhook names B with A as ``deleted_id``; CDC lists A as deleted. The pull settles merges before anything else
(:func:`apply_merge_events`, then the deleted stubs); a push that meets the deleted id first (610) asks
:func:`find_survivor` and :func:`apply_merge` the same way. The survivor's version goes through the one entry
point (:func:`qbo_sync.services.apply.apply_qbo_version`); what the host row still has to say is the caller's
to send (the pull and the push both queue it).
"""

from __future__ import annotations

from typing import Any, TypedDict

from qbo_sync.adapters import HostAdapter, get_adapter
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboNotFound
from qbo_sync.models import EntityMapping, SyncLog, WebhookEvent
from qbo_sync.services import mappings as maps
from qbo_sync.services.apply import Applied, apply_qbo_version
from qbo_sync.services.context import SyncContext, customer_of, query_in

#: How a merge event's operation is stored: legacy "Merge", CloudEvents ``qbo.customer.merged.v1`` -> "Merged".
MERGE_OPERATIONS = ("Merge", "Merged")


def merge_events(ctx: SyncContext, entity: str) -> dict[str, str]:
    """``{merged-away QBO id: survivor id}`` of the ``Merge`` webhooks stored for this organization and company."""
    if entity != "Customer":
        return {}
    return dict(WebhookEvent.objects.filter(organization_id=ctx.organization_id, realm_id=ctx.realm_id,
                                            entity=entity, operation__in=MERGE_OPERATIONS).exclude(deleted_id="")
                .values_list("deleted_id", "qbo_id"))


def find_survivor(ctx: SyncContext, mapping: EntityMapping) -> str | None:
    """The customer a deleted one was merged into: from a ``Merge`` webhook, else from where QuickBooks moved the
    invoices we sent for it (one bounded query). ``None`` when neither tells."""
    event = (WebhookEvent.objects.filter(realm_id=ctx.realm_id, entity="Customer", operation__in=MERGE_OPERATIONS,
                                         deleted_id=mapping.qbo_id).values_list("qbo_id", flat=True).first())
    if event:
        return str(event)
    invoice_ids = list(EntityMapping.objects.filter(
        organization_id=ctx.organization_id, realm_id=ctx.realm_id, entity_type="Invoice", qbo_id__isnull=False,
        snapshot__customer_object_id=mapping.object_id).values_list("qbo_id", flat=True)[:20])
    if not invoice_ids:
        return None
    owners = {customer_of(i) for i in query_in(ctx, "Invoice", "Id", invoice_ids)} - {"", str(mapping.qbo_id)}
    return owners.pop() if len(owners) == 1 else None


class MergeCounts(TypedDict, total=False):
    """The QuickBooks merges a pull (or a push) met: rows re-linked to the survivor, rows flagged for a person."""

    relinked: int
    flagged: int


def apply_merge(ctx: SyncContext, adapter: HostAdapter, mapping: EntityMapping, survivor_id: str,
                counts: MergeCounts) -> Applied | None:
    """The accountant merged this row's QBO customer into ``survivor_id``. If no other host row is linked to the
    survivor, link this row to it and apply the survivor's version (so the row's invoices point at a live customer
    and every later push goes to the survivor); returns what that did (the caller sends what remains). If another
    row is, flag this one for a person: ``merged_into`` is set and nothing is sent for it (nor for invoices that
    need it) until then; returns ``None``."""
    entity, lost = adapter.entity, str(mapping.qbo_id)
    other = maps.mappings_for_qbo_ids(ctx.realm_id, entity, [survivor_id]).get(str(survivor_id))
    obj = adapter.get_queryset(ctx.organization_id).filter(pk=mapping.object_id).first()
    if obj is None:
        return None
    if other is not None and other.pk != mapping.pk:
        name = adapter.to_values(obj).get("display_name") or str(obj)
        message = (f"{entity} {name} (QuickBooks id {lost}) was merged in QuickBooks into {entity.lower()} "
                   f"{survivor_id}, which is linked to another row of {host_label()} ({other.object_id}). They are one "
                   f"customer now: use the other row in {host_label()}; nothing is sent for this one.")
        maps.record_merged_away(mapping, str(survivor_id), message)
        maps.log(ctx.organization_id, "merged_in_qbo", message, level=SyncLog.Level.WARNING, entity_type=entity,
                 object_id=mapping.object_id, qbo_id=lost, job_id=ctx.job_id, survivor=str(survivor_id))
        counts["flagged"] = counts.get("flagged", 0) + 1
        return None
    try:
        payload = ctx.client.read(entity, survivor_id)
    except QboNotFound:
        return None
    maps.link_to(mapping, str(survivor_id))
    applied = apply_qbo_version(ctx, adapter, mapping, obj, payload)
    maps.log(ctx.organization_id, "merged_in_qbo", f"{entity} {lost} was merged into {survivor_id} in QuickBooks; "
             f"the row in {host_label()} is now linked to {survivor_id}", entity_type=entity,
             object_id=mapping.object_id, qbo_id=str(survivor_id), job_id=ctx.job_id, merged_away=lost)
    counts["relinked"] = counts.get("relinked", 0) + 1
    return applied


def apply_merge_events(ctx: SyncContext, entity: str, counts: MergeCounts) -> list[tuple[EntityMapping, Applied]]:
    """``Merge`` webhooks that name a record still linked here: settle them now, whether or not CDC shows the
    merged-away record deleted yet (QuickBooks may take its time). Returns the re-linked rows and what applying
    their survivor's version did."""
    merges = merge_events(ctx, entity)
    if not merges:
        return []
    adapter = get_adapter(entity)
    done: list[tuple[EntityMapping, Any]] = []
    for lost, mapping in maps.mappings_for_qbo_ids(ctx.realm_id, entity, merges).items():
        if not mapping.merged_into and merges[lost] != lost:
            applied = apply_merge(ctx, adapter, mapping, merges[lost], counts)
            if applied is not None:
                done.append((mapping, applied))
    return done


__all__ = ["MERGE_OPERATIONS", "MergeCounts", "apply_merge", "apply_merge_events", "find_survivor", "merge_events"]
