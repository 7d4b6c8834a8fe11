"""Plans: what a push or a pull would do, decided once, before anything is sent or read.

A plan is pure decision: it reads the database (links, snapshots, open conflicts, pull cursors) and the host's values
through the adapters, and never talks to QuickBooks. The executors act on these plans (``services/push.py`` sends
what :func:`plan_push` says, ``services/pull.py`` reads the window :func:`plan_pull` gives) and every preview (the
admin's confirmation page, the API's ``dry_run``, the command line's ``--dry-run``) renders the same plans, so a
preview cannot disagree with what runs. "What counts as a host change" is :func:`changed_fields`, here only.

What a push plan can say of a row (``PushPlan.action``):

* ``create`` — not in QuickBooks yet: created (an invoice's customer and items not sent yet go first);
* ``link`` — a create that may have reached QuickBooks already (an earlier attempt's answer was lost) or a row
  linked in another company before a reconnect: the record is looked up by its natural key and linked if found,
  created otherwise;
* ``update`` — the host changed ``fields`` since the last sync: a sparse update of those;
* ``revert`` — the host changed only fields QuickBooks owns (``put_back``): nothing is sent, QuickBooks' values are
  merged back into the host;
* ``void`` — an invoice sent to QuickBooks and voided in the host since: its void is sent;
* ``held`` — the only changes wait for a person (open conflicts on ``held``): nothing is sent;
* ``skip`` — nothing to do (already in step, sent once already, gone);
* ``refused`` — never sent, for the reason in ``code``: ``tenancy`` (another organization's row, or a row another
  organization linked), ``merged`` (its QuickBooks record, or an invoice's customer, was merged away), ``invalid``
  (QuickBooks would refuse it: the values fail the entity's checks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from django.db import models

from qbo_sync import registry
from qbo_sync.adapters import HostAdapter, InvoiceAdapterMixin, get_adapter, get_invoice_adapter
from qbo_sync.conf import host_label
from qbo_sync.mapping import get_mapper
from qbo_sync.mapping import invoices as invoice_rules
from qbo_sync.mapping.base import EntitySpec, MappingError, values_equal
from qbo_sync.models import Conflict, EntityMapping, PullCursor, QboConnection
from qbo_sync.services import mappings as maps
from qbo_sync.services.context import SyncContext
from qbo_sync.services.held import describe as describe_held
from qbo_sync.services.held import held_conflicts

#: Re-read this much before the cursor: QBO timestamps are per second and clocks differ; duplicates are skipped.
OVERLAP = dt.timedelta(minutes=2)

#: Every push verdict, in the order previews list their counts.
PUSH_ACTIONS = ("create", "link", "update", "revert", "void", "held", "skip", "refused")
#: The verdicts that need a queue item (a job started from a preview leaves the others out).
TODO_ACTIONS = frozenset({"create", "link", "update", "revert", "void"})

#: Stands for a QuickBooks id a dependency gets when it is sent first (invoices): enough for the checks.
PENDING_ID = "pending"

TaxModel = tuple[str, str] | Callable[[], tuple[str, str]]


# --- what counts as a host change ---------------------------------------------------------------------------------


def changed_fields(spec: EntitySpec, values: dict[str, Any], snapshot: dict[str, Any] | None,
                   held: Any = ()) -> list[str]:
    """The fields a sparse update sends: the host's value differs from the last-synced one, the field is not
    QuickBooks-owned, and it is not held. Plans, the push and every preview ask this one function."""
    base = snapshot or {}
    return [f for f in spec.fields if f in values and f not in spec.qbo_owned_fields and f not in held
            and not (f in base and values_equal(spec, f, values[f], base[f]))]


def qbo_owned_edits(spec: EntitySpec, values: dict[str, Any], snapshot: dict[str, Any] | None) -> list[str]:
    """QuickBooks-owned fields the host changed since the last sync (they are never sent; they are put back)."""
    base = snapshot or {}
    return [f for f in spec.qbo_owned_fields if f in values and f in base
            and not values_equal(spec, f, values[f], base[f])]


# --- push ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowPlan:
    """One row of a preview: the host id, how it reads, what will happen to it and why."""

    object_id: str
    label: str
    action: str
    reason: str = ""

    @property
    def todo(self) -> bool:
        """Whether a job has work for this row (``skip``, ``held`` and ``refused`` rows are left out of one)."""
        return self.action in TODO_ACTIONS


@dataclass(frozen=True)
class PushPlan(RowPlan):
    """What a push does to one host row (see the module docstring for the actions).

    ``fields``: what an update sends (a create sends every synced field); ``held``: fields waiting for a person,
    never sent; ``put_back``: QuickBooks-owned fields the host changed; ``code``: why a row is refused;
    ``detail``: the refusal in full (the failure the push records); ``needs``: an invoice's customer and items
    that go first. The rest is what the executor works with and previews ignore.
    """

    fields: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    put_back: tuple[str, ...] = ()
    code: str = ""
    detail: str = ""
    needs: tuple[tuple[str, str], ...] = ()
    obj: models.Model | None = field(default=None, repr=False, compare=False)
    mapping: EntityMapping | None = field(default=None, repr=False, compare=False)
    conflicts: dict[str, Conflict] = field(default_factory=dict, repr=False, compare=False)
    values: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def row(self) -> models.Model:
        """The host row a plan with work acts on (every plan but a ``skip`` of a row that is gone and a
        ``refused`` row of another organization has it)."""
        if self.obj is None:
            raise ValueError(f"the {self.action} plan of {self.object_id} has no host row")
        return self.obj


class _Carried(TypedDict, total=False):
    """What a plan carries for its executor besides its verdict (the :class:`PushPlan` fields of that name)."""

    held: tuple[str, ...]
    put_back: tuple[str, ...]
    obj: models.Model | None
    mapping: EntityMapping | None
    conflicts: dict[str, Conflict]
    values: dict[str, Any]


def _scope(ctx_or_org: SyncContext | Any) -> tuple[int, str]:
    """(organization id, realm id) of a sync context, or of an organization (or its id) and its current company."""
    if isinstance(ctx_or_org, SyncContext):
        return ctx_or_org.organization_id, ctx_or_org.realm_id
    organization_id = getattr(ctx_or_org, "pk", ctx_or_org)
    return organization_id, maps.current_realm(organization_id)


def configured_tax(organization_id: int) -> tuple[str, str]:
    """The tax model and code as configured; ``detect`` (read from QuickBooks at push time) is checked as none."""
    connection = QboConnection.objects.filter(organization_id=organization_id).first()
    return connection.sales_tax() if connection is not None else ("detect", "")


def plan_push(ctx_or_org: SyncContext | Any, entity: str, object_ids: Iterable[Any], *,
              tax: TaxModel | None = None) -> list[PushPlan]:
    """What a push of these host rows of ``entity`` does, row by row (in the order given, each id once).

    ``ctx_or_org``: the push's sync context (its organization and company), or an organization (or id) for a
    preview (its current company). ``tax``: ``(model, code)`` or a callable giving it (asked only when an invoice
    is checked); by default the configured one. Reads the database; sends and reads nothing in QuickBooks.
    """
    organization_id, realm_id = _scope(ctx_or_org)
    ids = list(dict.fromkeys(str(i) for i in object_ids))
    adapter = get_adapter(entity)
    objects = {str(pk): obj for pk, obj in adapter.get_queryset(organization_id).in_bulk(ids).items()}
    refused = maps.refused_rows(adapter, organization_id, ids, objects)
    mappings = maps.mappings_for_objects(adapter, list(objects), organization_id, realm_id)
    relinking = maps.linked_in_other_realm(adapter, list(objects), organization_id, realm_id)
    if entity == "Invoice":
        return _plan_invoices(organization_id, realm_id, get_invoice_adapter(), ids, objects, refused, mappings,
                              relinking, tax if tax is not None else (lambda: configured_tax(organization_id)))
    return _plan_names(adapter, ids, objects, refused, mappings, relinking)


def _refused(oid: str, label: str, code: str, detail: str, **kwargs: Any) -> PushPlan:
    reason = {"tenancy": "other organization", "merged": "merged in QuickBooks", "invalid": "invalid"}[code]
    return PushPlan(oid, label, "refused", f"{reason}: {detail}", code=code, detail=detail, **kwargs)


def _unplannable(oid: str, obj: models.Model | None, refused: dict[str, str], gone: str) -> PushPlan | None:
    """The verdict of a row nothing can be planned for (another organization's, or deleted), else None."""
    if oid in refused:
        return _refused(oid, str(obj) if obj is not None else oid, "tenancy", refused[oid], obj=obj)
    if obj is None:
        return PushPlan(oid, oid, "skip", gone)
    return None


def _plan_names(adapter: HostAdapter, ids: Sequence[str], objects: dict[str, models.Model],
                refused: dict[str, str], mappings: dict[str, EntityMapping], relinking: set[str]) -> list[PushPlan]:
    entity = adapter.entity
    mapper = get_mapper(entity)
    spec = mapper.SPEC
    held = held_conflicts(m.pk for m in mappings.values())
    plans: list[PushPlan] = []
    for oid in ids:
        obj = objects.get(oid)
        verdict = _unplannable(oid, obj, refused, "the row no longer exists in this organization; nothing to send")
        if verdict is not None:
            plans.append(verdict)
            continue
        assert obj is not None  # a missing row always has a verdict
        label, mapping, values = str(obj), mappings.get(oid), adapter.to_values(obj)
        if mapping is not None and mapping.merged_into:  # its QBO record was merged away: never write to the old id
            plans.append(_refused(oid, label, "merged", mapping.last_error or f"{entity} {obj} was merged in "
                                  f"QuickBooks into {mapping.merged_into}; settle it first", obj=obj,
                                  mapping=mapping, values=values))
            continue
        if mapping is None or not mapping.qbo_id:
            try:  # what QuickBooks would refuse; the income account is read from QuickBooks at push time
                context: dict[str, Any] = {"income_account_ref": PENDING_ID} if entity == "Item" else {}
                mapper.to_qbo(values, **context)
            except MappingError as exc:
                plans.append(_refused(oid, label, "invalid", str(exc), obj=obj, mapping=mapping, values=values))
                continue
            fields = tuple(f for f in spec.fields if f in values)
            if (mapping is not None and mapping.last_pushed_at is not None) or oid in relinking:
                key = spec.unique_key
                why = ("an earlier attempt may have reached QuickBooks" if oid not in relinking
                       else "it was linked in another QuickBooks company")
                plans.append(PushPlan(oid, label, "link", f"{why}: linked to the {entity.lower()} with its "
                                      f"{key.field if key else 'natural key'} if QuickBooks has one, else created",
                                      fields=fields, obj=obj, mapping=mapping, values=values))
            else:
                plans.append(PushPlan(oid, label, "create", fields=fields, obj=obj, mapping=mapping, values=values))
            continue
        conflicts = held.get(mapping.pk, {})
        waiting = tuple(sorted(conflicts))
        changed = tuple(changed_fields(spec, values, mapping.snapshot, conflicts))
        put_back = tuple(qbo_owned_edits(spec, values, mapping.snapshot))
        rest = _Carried(held=waiting, put_back=put_back, obj=obj, mapping=mapping, conflicts=conflicts, values=values)
        held_note = f"; {describe_held(conflicts)}" if conflicts else ""
        if changed:
            plans.append(PushPlan(oid, label, "update", "changed: " + ", ".join(changed) + held_note, fields=changed,
                                  **rest))
        elif put_back:
            plans.append(PushPlan(oid, label, "revert", f"QuickBooks owns {', '.join(put_back)}: its value is put "
                                  f"back in {host_label()}" + held_note, **rest))
        elif conflicts:
            plans.append(PushPlan(oid, label, "held", describe_held(conflicts), **rest))
        else:
            plans.append(PushPlan(oid, label, "skip", "already in step with QuickBooks", **rest))
    return plans


def _plan_invoices(organization_id: int, realm_id: str, adapter: InvoiceAdapterMixin, ids: Sequence[str],
                   objects: dict[str, models.Model], refused: dict[str, str], mappings: dict[str, EntityMapping],
                   relinking: set[str], tax: TaxModel) -> list[PushPlan]:
    values_of = {oid: adapter.to_values(obj) for oid, obj in objects.items()
                 if oid not in refused and not adapter.is_void(obj)
                 and not (mappings.get(oid) is not None and mappings[oid].qbo_id)}
    customer_maps = maps.mappings_for_objects(get_adapter("Customer"),
                                              {v["customer_object_id"] for v in values_of.values()},
                                              organization_id, realm_id)
    customer_ids = {oid: m.qbo_id for oid, m in customer_maps.items() if m.qbo_id}
    merged_away = {oid: m.last_error for oid, m in customer_maps.items() if m.merged_into}
    item_ids = {oid: m.qbo_id for oid, m in maps.mappings_for_objects(
        get_adapter("Item"), {line["item_object_id"] for v in values_of.values() for line in v["lines"]},
        organization_id, realm_id).items() if m.qbo_id}
    tax_model: tuple[str, str] | None = None
    plans: list[PushPlan] = []
    for oid in ids:
        obj = objects.get(oid)
        mapping = mappings.get(oid)
        sent = mapping if mapping is not None and mapping.qbo_id else None  # its link to QuickBooks' invoice
        verdict = _unplannable(oid, obj, refused, "the invoice no longer exists; nothing to send")
        if verdict is not None:
            plans.append(verdict)
            continue
        assert obj is not None  # a missing row always has a verdict
        label = str(obj)
        if adapter.is_void(obj):
            if sent is not None and not (sent.snapshot or {}).get("voided"):
                plans.append(PushPlan(oid, label, "void", f"voided in {host_label()}", obj=obj, mapping=mapping))
            else:
                plans.append(PushPlan(oid, label, "skip", "void" + (" in QuickBooks already" if sent is not None
                                                                    else " and never sent"), obj=obj,
                                      mapping=mapping))
            continue
        if sent is not None:
            plans.append(PushPlan(oid, label, "skip", f"already in QuickBooks as invoice {sent.qbo_id}; an "
                                  "invoice is sent once", obj=obj, mapping=mapping))
            continue
        values = values_of[oid]
        rest = _Carried(obj=obj, mapping=mapping, values=values)
        if values["customer_object_id"] in merged_away:
            plans.append(_refused(oid, label, "merged", f"Invoice {values.get('doc_number')} was not sent: its "
                                  f"customer needs a person first. {merged_away[values['customer_object_id']]}",
                                  **rest))
            continue
        needs = tuple([("Customer", values["customer_object_id"])] * (values["customer_object_id"] not in customer_ids)
                      + list(dict.fromkeys(("Item", line["item_object_id"]) for line in values["lines"]
                                           if line["item_object_id"] not in item_ids)))
        values["customer_qbo_id"] = customer_ids.get(values["customer_object_id"], PENDING_ID)
        for line in values["lines"]:
            line["item_qbo_id"] = item_ids.get(line["item_object_id"], PENDING_ID)
        if tax_model is None:
            tax_model = tax() if callable(tax) else tax
        try:
            issues = [str(i) for i in invoice_rules.validate(values, tax_model=tax_model[0], tax_code=tax_model[1])]
        except MappingError as exc:
            issues = [str(exc)]
        if issues:
            plans.append(_refused(oid, label, "invalid", "; ".join(issues), needs=needs, **rest))
            continue
        action, reason = "create", ""
        if (mapping is not None and mapping.last_pushed_at is not None) or oid in relinking:
            action, reason = "link", ("an earlier attempt may have reached QuickBooks: linked to the invoice with its "
                                      "number if QuickBooks has one, else created")
        plans.append(PushPlan(oid, label, action, reason, needs=needs, **rest))
    return plans


# --- pull ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetedPullPlan(RowPlan):
    """What "pull selected" does to one host row: ``update`` (read QuickBooks record ``qbo_id`` again and merge it)
    or ``skip`` (never sent: QuickBooks has nothing for it yet)."""

    qbo_id: str = ""


def plan_targeted_pull(ctx_or_org: SyncContext | Any, entity: str, object_ids: Iterable[Any]
                       ) -> list[TargetedPullPlan]:
    """The rows a targeted pull of these host rows re-reads (each once, in the order given): those linked to a
    QuickBooks record in the organization's current company. The admin's preview and the job both use this."""
    organization_id, realm_id = _scope(ctx_or_org)
    ids = list(dict.fromkeys(str(i) for i in object_ids))
    adapter = get_adapter(entity)
    objects = {str(pk): obj for pk, obj in adapter.get_queryset(organization_id).in_bulk(ids).items()}
    mappings = maps.mappings_for_objects(adapter, list(objects), organization_id, realm_id)
    plans: list[TargetedPullPlan] = []
    for oid in ids:
        label = str(objects[oid]) if oid in objects else oid
        mapping = mappings.get(oid)
        if mapping is not None and mapping.qbo_id:
            plans.append(TargetedPullPlan(oid, label, "update", f"refreshed from QuickBooks {entity} "
                                          f"{mapping.qbo_id}", qbo_id=mapping.qbo_id))
        else:
            plans.append(TargetedPullPlan(oid, label, "skip", "not in QuickBooks yet: sync it first"))
    return plans

@dataclass(frozen=True)
class PullPlan:
    """The window of one pull: ``mode`` ``full`` (every record), ``incremental`` (changes since ``since``: the
    cursor, or a time asked for; the read starts at ``read_from``, ``OVERLAP`` earlier) or ``targeted`` (the
    records ``qbo_ids`` only); ``reads``: the QuickBooks entities read."""

    entity: str
    mode: str
    reads: tuple[str, ...]
    since: dt.datetime | None = None
    read_from: dt.datetime | None = None
    qbo_ids: tuple[str, ...] = ()

    @property
    def full(self) -> bool:
        return self.mode == "full"

    @property
    def feed_start(self) -> dt.datetime:
        """Where an incremental pull reads the change feed from (``read_from``); other pulls read no feed."""
        if self.read_from is None:
            raise ValueError(f"a {self.mode} pull of {self.entity} reads no change feed")
        return self.read_from

    def describe(self) -> str:
        if self.mode == "targeted":
            return f"{len(self.qbo_ids)} record(s) by id"
        # a full pull has no window start; an incremental one always has one
        return "everything" if self.read_from is None else f"changed since {self.read_from.isoformat()}"


def plan_pull(ctx_or_org: SyncContext | Any, entity: str, *, full: bool = False, since: dt.datetime | None = None,
              qbo_ids: Sequence[str] = ()) -> PullPlan:
    """The window a pull of ``entity`` reads: the records ``qbo_ids`` (a webhook, a targeted pull); everything
    (``full``, or no cursor yet); else changes since ``since`` when given, otherwise since the cursor."""
    organization_id, _ = _scope(ctx_or_org)
    if entity not in registry.pullable():
        raise ValueError(f"{entity} is never pulled")
    spec = registry.spec(entity)
    # Read by id or in full: the records themselves (a payment pull: the invoices we sent, whose payment state it
    # writes); incremental: the change feed of everything the entity's pull reads (its SPEC).
    records = (spec.host_entity,)
    if qbo_ids:
        return PullPlan(entity, "targeted", records, qbo_ids=tuple(str(i) for i in qbo_ids))
    if since is None and not full:
        since = (PullCursor.objects.filter(organization_id=organization_id, entity_type=entity)
                 .values_list("changed_since", flat=True).first())
    if full or since is None:
        return PullPlan(entity, "full", records)
    return PullPlan(entity, "incremental", tuple(spec.reads), since=since, read_from=since - OVERLAP)
