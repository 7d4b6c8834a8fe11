"""EntityMapping lookups and writes: the one module that changes a link's state (push, pull, apply, merges,
reconcile and conflict resolution call the functions here; one query per chunk, never per row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone

from qbo_sync.adapters import HostAdapter
from qbo_sync.mapping.base import jsonable
from qbo_sync.mapping.merge import FieldConflict
from qbo_sync.models import Conflict, EntityMapping, QboConnection, SyncLog
from qbo_sync.services.outcomes import safe_text


def content_type_for(adapter: HostAdapter) -> ContentType:
    return ContentType.objects.get_for_model(adapter.model, for_concrete_model=True)


def current_realm(organization_id: int) -> str:
    """The QuickBooks company the organization is (or was last) connected to; "" when it never connected."""
    return (QboConnection.objects.filter(organization_id=organization_id).values_list("realm_id", flat=True).first()
            or "")


def mappings_for_objects(adapter: HostAdapter, object_ids: Iterable[str], organization_id: int,
                         realm_id: str | None = None) -> dict[str, EntityMapping]:
    """The links of these host rows that this organization made in this company (default: its current one).

    Links made in another company (before a reconnect) or by another organization (before the row moved) are
    never returned: their QBO ids mean nothing here.
    """
    realm = current_realm(organization_id) if realm_id is None else realm_id
    ct = content_type_for(adapter)
    ids = [str(i) for i in object_ids]
    return {m.object_id: m for m in EntityMapping.objects.filter(
        content_type=ct, object_id__in=ids, organization_id=organization_id, realm_id=realm)}


def linked_in_other_realm(adapter: HostAdapter, object_ids: Iterable[str], organization_id: int,
                          realm_id: str) -> set[str]:
    """Rows this organization linked in another QuickBooks company (before a reconnect): they start over from
    natural-key linking in this one, never from the old ids."""
    ids = [str(i) for i in object_ids]
    return set(EntityMapping.objects.filter(content_type=content_type_for(adapter), object_id__in=ids,
                                            organization_id=organization_id, qbo_id__isnull=False)
               .exclude(realm_id=realm_id).values_list("object_id", flat=True))


def refused_rows(adapter: HostAdapter, organization_id: int, object_ids: Iterable[str],
                 found: dict[str, models.Model]) -> dict[str, str]:
    """Rows a sync of ``organization_id`` must not send, with the reason (``{object_id: message}``).

    ``found`` are the requested rows that the adapter's queryset of this organization returned. A requested row
    that exists but is not among them belongs to another organization; a found row that another organization
    linked to QuickBooks has moved here since. Neither is sent: the first would write into this organization's
    company data it does not own, the second would reuse another company's ids.
    """
    entity = adapter.entity
    refused: dict[str, str] = {}
    for pk in foreign_rows(adapter, organization_id, [str(i) for i in object_ids if str(i) not in found]):
        refused[pk] = (f"{entity} {pk} belongs to another organization than this sync's; refused, nothing was sent "
                       "to QuickBooks.")
    moved = set(EntityMapping.objects.filter(content_type=content_type_for(adapter), object_id__in=list(found),
                                             qbo_id__isnull=False).exclude(organization_id=organization_id)
                .values_list("object_id", flat=True))
    for oid in moved:
        refused[oid] = (f"{entity} {found[oid]} was linked to QuickBooks by another organization and has moved to "
                        "this one since; refused, nothing was sent. Move it back, or create a new "
                        f"{entity.lower()} here.")
    return refused


def foreign_rows(adapter: HostAdapter, organization_id: int, object_ids: Iterable[str]) -> list[str]:
    """Which of these ids are rows of another organization (ids of no row at all are not foreign)."""
    valid = [str(i) for i in object_ids if _is_pk(adapter.model, str(i))]
    if not valid:
        return []
    return [str(pk) for pk in adapter.model._default_manager.filter(pk__in=valid)
            .exclude(**{adapter.organization_field: organization_id}).values_list("pk", flat=True)]


def _is_pk(model: type[models.Model], value: str) -> bool:
    """Whether ``value`` can be a primary key of ``model`` at all (PostgreSQL errors on an out-of-range integer)."""
    try:
        pk = model._meta.pk.to_python(value)
    except (ValueError, TypeError, ValidationError):
        return False
    return not isinstance(pk, int) or -(2**63) <= pk < 2**63


def mappings_for_qbo_ids(realm_id: str, entity: str, qbo_ids: Iterable[str]) -> dict[str, EntityMapping]:
    ids = [str(i) for i in qbo_ids]
    return {m.qbo_id: m for m in EntityMapping.objects.filter(realm_id=realm_id, entity_type=entity, qbo_id__in=ids)
            if m.qbo_id is not None}


def new_mapping(adapter: HostAdapter, obj: models.Model, organization_id: int, realm_id: str) -> EntityMapping:
    return EntityMapping(
        organization_id=organization_id,
        entity_type=adapter.entity,
        content_type=content_type_for(adapter),
        object_id=str(obj.pk),
        realm_id=realm_id,
    )


def _same_host_row(mapping: EntityMapping) -> dict[str, Any]:
    """The lookup that matches the host-row constraint (``uniq_mapping_host_row``)."""
    return {"realm_id": mapping.realm_id, "content_type_id": mapping.content_type_id, "object_id": mapping.object_id}


def save_new(mapping: EntityMapping) -> EntityMapping:
    """Insert a new mapping, or return the one another worker (or another item of this chunk) created first.

    Get-or-create under the host-row constraint: two items for the same never-synced row never fail each other.
    The caller must use the returned mapping (it may already hold a QBO id).
    """
    try:
        with transaction.atomic():
            mapping.save(force_insert=True)
        return mapping
    except IntegrityError:
        existing = EntityMapping.objects.filter(**_same_host_row(mapping)).first()
        if existing is None:  # another constraint (the QBO object is linked elsewhere): the caller's problem
            raise
        return existing


def save_new_many(mappings: Sequence[EntityMapping]) -> dict[str, EntityMapping]:
    """``save_new`` for many unsaved mappings of one entity at once: ``{object_id: the stored mapping}``."""
    if not mappings:
        return {}
    EntityMapping.objects.bulk_create(mappings, batch_size=500, ignore_conflicts=True)
    first = mappings[0]
    stored = EntityMapping.objects.filter(realm_id=first.realm_id, content_type_id=first.content_type_id,
                                          object_id__in=[m.object_id for m in mappings])
    return {m.object_id: m for m in stored}


SYNCED_FIELDS = ["qbo_id", "sync_token", "snapshot", "qbo_payload", "qbo_updated_at", "host_updated_at",
                 "last_pushed_at", "last_pulled_at", "state", "last_error", "updated_at"]


def record_synced(
    mapping: EntityMapping,
    payload: dict[str, Any],
    snapshot: dict[str, Any],
    *,
    qbo_updated_at: dt.datetime | None,
    host_updated_at: dt.datetime | None,
    pushed: bool = False,
    pulled: bool = False,
    state: str = EntityMapping.State.SYNCED,
) -> None:
    set_synced(mapping, payload, snapshot, qbo_updated_at=qbo_updated_at, host_updated_at=host_updated_at,
               pushed=pushed, pulled=pulled, state=state)
    if mapping.pk is None:
        mapping.save()
    else:
        mapping.save(update_fields=SYNCED_FIELDS)


def set_synced(
    mapping: EntityMapping,
    payload: dict[str, Any],
    snapshot: dict[str, Any],
    *,
    qbo_updated_at: dt.datetime | None,
    host_updated_at: dt.datetime | None,
    pushed: bool = False,
    pulled: bool = False,
    state: str = EntityMapping.State.SYNCED,
    warning: str = "",
) -> None:
    """What :func:`record_synced` writes, set on the instance only (saved by it, or by :func:`save_synced_many`):
    the QBO version ``payload`` (id, SyncToken, the payload itself) and the new base. ``warning``: the message a
    synced link keeps (an invoice whose total QuickBooks read back differently)."""
    now = timezone.now()
    mapping.qbo_id = str(payload.get("Id") or mapping.qbo_id)
    mapping.sync_token = str(payload.get("SyncToken", mapping.sync_token))
    mapping.snapshot = jsonable(snapshot)
    mapping.qbo_payload = jsonable(payload)
    mapping.qbo_updated_at = qbo_updated_at
    mapping.host_updated_at = host_updated_at
    if pushed:
        mapping.last_pushed_at = now
    if pulled:
        mapping.last_pulled_at = now
    mapping.state = state
    if state == EntityMapping.State.SYNCED:
        mapping.last_error = safe_text(warning)
    mapping.updated_at = now


def save_synced_many(mappings: Sequence[EntityMapping]) -> None:
    """Save what :func:`set_synced` set on many mappings: one prepared UPDATE executed for every stored row
    (``executemany``), instead of a ``save()`` each; ``bulk_update``'s CASE expressions measured ~10 ms a row."""
    stored = [m for m in mappings if m.pk is not None]
    if stored:
        connection = transaction.get_connection(router.db_for_write(EntityMapping))
        meta = EntityMapping._meta
        fields = [f for f in meta.concrete_fields if f.name in SYNCED_FIELDS]
        qn = connection.ops.quote_name
        sql = (f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in fields)} "  # noqa: S608
               f"WHERE {qn(meta.pk.column)} = %s")
        rows = [[f.get_db_prep_save(getattr(m, f.attname), connection) for f in fields] + [m.pk] for m in stored]
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    for mapping in mappings:
        if mapping.pk is None:
            mapping.save()


def record_version(mapping: EntityMapping, payload: dict[str, Any], *, qbo_updated_at: dt.datetime | None) -> None:
    """Record a QBO version whose content was applied elsewhere (an invoice's payment state): its SyncToken, time
    and payload, nothing else of the link."""
    mapping.sync_token = str(payload.get("SyncToken", mapping.sync_token))
    mapping.last_pulled_at = timezone.now()
    mapping.qbo_updated_at = qbo_updated_at
    mapping.qbo_payload = jsonable(payload)
    EntityMapping.objects.filter(pk=mapping.pk).update(sync_token=mapping.sync_token,
                                                       last_pulled_at=mapping.last_pulled_at,
                                                       qbo_updated_at=qbo_updated_at, qbo_payload=mapping.qbo_payload)


def create_linked_many(adapter: HostAdapter, organization_id: int, realm_id: str,
                       linked: Sequence[tuple[models.Model, dict[str, Any], dict[str, Any], dt.datetime | None]]
                       ) -> None:
    """Links for host rows just created from QBO records: ``(host row, QBO payload, canonical values, QBO time)``
    each, inserted in bulk, already synced (the values are the base)."""
    ct = content_type_for(adapter)
    now = timezone.now()
    EntityMapping.objects.bulk_create([
        EntityMapping(organization_id=organization_id, entity_type=adapter.entity, content_type=ct,
                      object_id=str(obj.pk), realm_id=realm_id, qbo_id=str(payload["Id"]),
                      sync_token=str(payload.get("SyncToken", "0")), snapshot=jsonable(values),
                      qbo_payload=jsonable(payload), qbo_updated_at=qbo_updated_at,
                      host_updated_at=adapter.updated_at(obj), last_pulled_at=now, state=EntityMapping.State.SYNCED)
        for obj, payload, values, qbo_updated_at in linked
    ], batch_size=500)


def mark_push_started(mappings: Iterable[EntityMapping]) -> None:
    """A push of these links starts now, before anything leaves: a later attempt then knows that a create may have
    reached QuickBooks and looks before creating again (one UPDATE)."""
    ids = [m.pk for m in mappings if m.pk]
    if ids:
        EntityMapping.objects.filter(pk__in=ids).update(last_pushed_at=timezone.now())


def record_sent(mapping: EntityMapping, answer: dict[str, Any], sent: dict[str, Any]) -> None:
    """QuickBooks accepted a write of ``sent`` (canonical values): they join the base and the link knows its QBO
    id. The answer itself is recorded when it is applied (``services.apply``)."""
    base = dict(mapping.snapshot or {})
    base.update(sent)
    mapping.snapshot = jsonable(base)
    mapping.qbo_id = str(answer.get("Id") or mapping.qbo_id)
    mapping.last_pushed_at = timezone.now()
    if mapping.pk is None:
        mapping.save()


def forget_versions(organization_id: int, realm_id: str, entity: str, qbo_ids: Iterable[str]) -> None:
    """Forget which version of these records was applied, so the next one read is merged again (a repair)."""
    EntityMapping.objects.filter(organization_id=organization_id, realm_id=realm_id, entity_type=entity,
                                 qbo_id__in=[str(i) for i in qbo_ids]).update(sync_token="")


def mark_for_relink(mapping: EntityMapping) -> None:
    """A link with no QBO id and a push marked as started: the next push of the row looks its record up by natural
    key and links it (a reconciliation repair)."""
    mapping.qbo_id = None
    mapping.last_pushed_at = timezone.now()
    mapping.save()


def record_resolution(mapping: EntityMapping, field: str, qbo_value: Any, *, still_open: bool) -> None:
    """A person resolved the conflict on ``field``: its base becomes QuickBooks' value (if the chosen one differs,
    the push queued after it sends it), and the link is synced again once no other conflict is open."""
    snapshot = dict(mapping.snapshot or {})
    snapshot[field] = qbo_value
    mapping.snapshot = snapshot
    if not still_open:
        mapping.state = EntityMapping.State.SYNCED
    mapping.save(update_fields=["snapshot", "state", "updated_at"])


def link_to(mapping: EntityMapping, qbo_id: str, *, forget_base: bool = False) -> None:
    """Point the link at a QBO record (found by natural key, or the survivor of a merge); no version of it is known
    yet, so the next one applied is merged, whatever its SyncToken. ``forget_base``: a first link, merged with no
    base."""
    mapping.qbo_id, mapping.sync_token, mapping.merged_into, mapping.last_error = str(qbo_id), "", "", ""
    if forget_base:
        mapping.snapshot = {}
    if mapping.pk is None:
        mapping.save()
        return
    EntityMapping.objects.filter(pk=mapping.pk).update(qbo_id=mapping.qbo_id, sync_token="", merged_into="",
                                                       last_error="", snapshot=mapping.snapshot,
                                                       updated_at=timezone.now())


def record_merged_away(mapping: EntityMapping, survivor_id: str, message: str) -> None:
    """The link's QBO record was merged into ``survivor_id``, which another host row is linked to: flag it for a
    person (nothing is sent for it meanwhile)."""
    mapping.merged_into, mapping.last_error = str(survivor_id), safe_text(message)
    mapping.state = EntityMapping.State.FAILED
    EntityMapping.objects.filter(pk=mapping.pk).update(merged_into=mapping.merged_into, last_error=mapping.last_error,
                                                       state=mapping.state, updated_at=timezone.now())


def record_failure(mapping: EntityMapping | None, message: str) -> None:
    if mapping is None or mapping.pk is None:
        return
    EntityMapping.objects.filter(pk=mapping.pk).update(
        state=EntityMapping.State.FAILED, last_error=safe_text(message), updated_at=timezone.now()
    )


def record_conflicts(mapping: EntityMapping, conflicts: Iterable[FieldConflict]) -> list[Conflict]:
    from qbo_sync.signals import conflict_recorded

    rows = []
    for c in conflicts:
        held = c.winner is None
        rows.append(Conflict(
            organization_id=mapping.organization_id, mapping=mapping, entity_type=mapping.entity_type,
            field=c.field, base_value=jsonable(c.base), host_value=jsonable(c.host), qbo_value=jsonable(c.qbo),
            host_updated_at=c.host_updated_at, qbo_updated_at=c.qbo_updated_at, rule=str(c.rule),
            winner=c.winner or "", state=Conflict.State.OPEN if held else Conflict.State.AUTO_RESOLVED,
            resolved_value=None if held else jsonable(c.winning_value),
        ))
    if rows:
        # Re-raised held conflicts (the same field still differs) are not recorded twice: the open one is brought
        # up to date instead, so it always shows what each side holds now (what "keep ..." then writes).
        open_by_field = {c.field: c for c in Conflict.objects.filter(mapping=mapping, state=Conflict.State.OPEN)}
        for row in rows:
            current = open_by_field.get(row.field) if row.state == Conflict.State.OPEN else None
            if current is not None and (current.host_value, current.qbo_value) != (row.host_value, row.qbo_value):
                Conflict.objects.filter(pk=current.pk, state=Conflict.State.OPEN).update(
                    host_value=row.host_value, qbo_value=row.qbo_value, host_updated_at=row.host_updated_at,
                    qbo_updated_at=row.qbo_updated_at)
        rows = [r for r in rows if not (r.state == Conflict.State.OPEN and r.field in open_by_field)]
        Conflict.objects.bulk_create(rows)
        for row in rows:
            conflict_recorded.send(sender=Conflict, conflict=row)
    return rows


def log(organization_id: int | None, event: str, message: str, *, level: str = SyncLog.Level.INFO,
        entity_type: str = "", object_id: str | None = "", qbo_id: str | None = "", job_id: int | None = None,
        **data: Any) -> None:
    SyncLog.objects.create(organization_id=organization_id, event=event, message=safe_text(message, 4000), level=level,
                           entity_type=entity_type, object_id=str(object_id or ""), qbo_id=str(qbo_id or ""),
                           job_id=job_id, data=jsonable(data))
