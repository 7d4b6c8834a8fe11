"""How a host project tells qbo_sync which of its models are QuickBooks customers, items and invoices.

qbo_sync never imports the host. The host writes one adapter class per entity and names it in settings::

    QBO_SYNC = {"ENTITY_ADAPTERS": {"Customer": "myapp.qbo.CustomerAdapter", ...}}

An adapter converts between a host row and the entity's *canonical values*: the plain dict whose keys are listed
in ``qbo_sync.mapping.<entity>.SPEC`` (e.g. ``display_name``, ``email`` for a customer). Everything QuickBooks-shaped
happens in ``qbo_sync.mapping``; everything host-shaped happens here. Sales orders have no adapter: they never sync.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from qbo_sync.conf import on_reload
from qbo_sync.exceptions import QboConfigurationError
from qbo_sync.registry import with_adapters


class HostAdapter:
    """Base class of a host adapter. Subclasses set ``entity`` and ``model`` and implement the conversions."""

    entity: ClassVar[str]
    model: ClassVar[type[models.Model]]
    #: The host field that records when a row last changed (compared with QBO's LastUpdatedTime).
    updated_at_field: ClassVar[str] = "updated_at"
    #: The host field holding the tenant (organization) id.
    organization_field: ClassVar[str] = "organization_id"

    def get_queryset(self, organization_id: int) -> models.QuerySet:
        return self.model._default_manager.filter(**{self.organization_field: organization_id})

    def organization_id(self, obj: models.Model) -> int:
        return int(getattr(obj, self.organization_field))

    def updated_at(self, obj: models.Model) -> dt.datetime:
        return getattr(obj, self.updated_at_field)

    def to_values(self, obj: models.Model) -> dict[str, Any]:
        """The row as canonical values (see the entity's mapping SPEC)."""
        raise NotImplementedError

    def apply_values(self, obj: models.Model, values: dict[str, Any]) -> None:
        """Write canonical values (a subset: only the fields that changed) onto the row and save it."""
        raise NotImplementedError

    def clean_value(self, name: str, value: Any) -> Any:
        """Check one value a person typed for the canonical field ``name`` (a conflict resolved with an edited
        value) the way the host field would, before anything is written; return it cleaned.

        Raises Django's ``ValidationError`` with the field's own messages. The default validates through the model
        field of the same name: text fields take only text without NUL characters, then the field's ``clean()``
        (type, ``max_length``, choices, null/blank, validators such as the email format). Override it when a
        canonical field is not a model field of that name.
        """
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        if not isinstance(field, models.Field):  # no such field, or a reverse relation (another model's rows)
            raise ValidationError(f"{name} cannot be edited here.")
        if isinstance(field, (models.CharField, models.TextField)):
            if not isinstance(value, str):
                kind = "true/false" if isinstance(value, bool) else "a number" if isinstance(value, (int, float)) \
                    else "a value of another type"
                raise ValidationError(f"Enter text, not {kind}.", code="invalid")
            if "\x00" in value:
                raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        return field.clean(value, None)

    def create_from_values(self, organization_id: int, values: dict[str, Any]) -> models.Model:
        """Create a host row from values pulled from QuickBooks (entities that sync both ways)."""
        raise NotImplementedError

    def bulk_create_from_values(self, organization_id: int, values_list: list[dict[str, Any]]) -> list[models.Model]:
        """Create many host rows at once (first import). The default creates them one by one."""
        return [self.create_from_values(organization_id, values) for values in values_list]

    def auto_push(self, obj: models.Model, created: bool) -> bool:
        """Whether saving this row should push it to QuickBooks soon (customers and items: yes)."""
        return True

    def dependencies(self, obj: models.Model) -> Iterable[models.Model]:
        """Rows that must exist in QuickBooks before this one can be sent (an invoice's customer and items)."""
        return ()


#: The entity whose adapter must also provide the invoice hooks (:class:`InvoiceAdapterMixin`).
INVOICE = "Invoice"


class InvoiceAdapterMixin(HostAdapter):
    """The extra hooks an invoice adapter provides (push only; payments come back onto the invoice).

    Mixed in before ``HostAdapter`` (``class InvoiceAdapter(InvoiceAdapterMixin, HostAdapter)``); the registry
    refuses an invoice adapter without it (``qbo_sync.E001``), so the engine can rely on every hook below.
    """

    def is_void(self, obj: models.Model) -> bool:
        raise NotImplementedError

    def void_ids(self, organization_id: int, object_ids: list[str]) -> list[str]:
        """Which of these invoices are void (a bulk push turns them into voids). Override with one query."""
        rows = self.get_queryset(organization_id).filter(pk__in=object_ids)
        return [str(o.pk) for o in rows if self.is_void(o)]

    def mark_sent(self, obj: models.Model) -> None:
        raise NotImplementedError

    def mark_sent_many(self, objs: Sequence[models.Model]) -> None:
        """``mark_sent`` for every invoice of a chunk QuickBooks accepted, inside the transaction that records
        them. The default calls ``mark_sent`` on each; override with one UPDATE (and keep the instances' sent state
        in step, as ``mark_sent`` does) to save a query per invoice."""
        for obj in objs:
            self.mark_sent(obj)

    def apply_payment_state(self, obj: models.Model, state: dict[str, Any]) -> None:
        """Write QuickBooks' payment state onto the invoice row and save it (only what changed).

        ``state`` holds the keys of ``qbo_sync.mapping.payments.SPEC``: ``amount_paid`` (money the customer paid),
        ``amount_credited`` and ``amount_refunded`` (optional for the host: ignore them if you have no room) and
        ``amount_due`` (``Decimal``), ``payment_status`` (``"paid"``, ``"credited"``, ``"refunded"``,
        ``"partial"``, ``"overdue"``, ``"open"`` or ``"void"``),
        ``last_payment_date`` (``date`` or ``None``) and ``last_payment_id`` (``str`` or ``None``), and, unless the
        invoice is void, ``tax_amount`` and ``total`` (``Decimal``: the sales tax QuickBooks charged and its total
        including that tax; a host without tax fields ignores them). It is called
        with every QuickBooks answer that carries the invoice's balance: the push's own answer (nothing paid yet:
        amount due = total), a void, and every pull, including versions already seen. So it must be idempotent
        and cheap when nothing changed, must save even a sent (locked) invoice's payment fields, and may ignore a
        status it has no room for (``"void"``). QuickBooks owns these fields: qbo_sync never pushes them.
        """
        raise NotImplementedError

    def apply_payment_states(self, pairs: Sequence[tuple[models.Model, dict[str, Any]]]) -> None:
        """``apply_payment_state`` for every invoice of a pushed chunk (the answers QuickBooks gave to the push),
        inside the one transaction that records them. The default calls ``apply_payment_state`` on each; override
        to write the rows in a few UPDATEs (and keep the instances in step with their rows, as ``mark_sent_many``
        does) to save a save per invoice."""
        for obj, state in pairs:
            self.apply_payment_state(obj, state)

    def payment_state(self, obj: models.Model) -> dict[str, Any] | None:
        """The payment state the invoice row holds now (what ``apply_payment_state`` last wrote), for
        reconciliation to compare with QuickBooks: ``{"amount_due": Decimal, "payment_status": str}``, plus
        ``"tax_amount": Decimal`` when the host keeps the sales tax QuickBooks charged; ``None`` when the host keeps
        no payment state. The default reads attributes of those names; a host whose columns are named otherwise
        overrides it."""
        due, status = getattr(obj, "amount_due", None), getattr(obj, "payment_status", None)
        if due is None or status is None:
            return None
        state = {"amount_due": due, "payment_status": status}
        tax = getattr(obj, "tax_amount", None)
        if tax is not None:
            state["tax_amount"] = tax
        return state

    def refresh_overdue(self, organization_id: int, today: dt.date) -> int:
        """Mark open invoices past their due date as overdue (time passes without QBO changing anything)."""
        return 0


class AdapterRegistry:
    """Adapters built lazily from settings; rebuilt when the settings change (tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_entity: dict[str, HostAdapter] | None = None

    def reset(self) -> None:
        with self._lock:
            self._by_entity = None

    def _load(self) -> dict[str, HostAdapter]:
        from qbo_sync.conf import qbo_settings

        with self._lock:
            if self._by_entity is None:
                loaded: dict[str, HostAdapter] = {}
                for entity, cls in qbo_settings.ENTITY_ADAPTERS.items():  # imported by qbo_settings
                    if entity not in with_adapters():
                        raise QboConfigurationError(f"QBO_SYNC['ENTITY_ADAPTERS'] names {entity!r}; qbo_sync syncs "
                                                    f"{', '.join(with_adapters())}.")
                    adapter = cls()
                    path = f"{cls.__module__}.{cls.__qualname__}"
                    if getattr(adapter, "entity", entity) != entity:
                        raise QboConfigurationError(f"{path} is an adapter for {adapter.entity}, not {entity}.")
                    if entity == INVOICE and not isinstance(adapter, InvoiceAdapterMixin):
                        raise QboConfigurationError(
                            f"The {entity} adapter {path} must mix in qbo_sync.adapters.InvoiceAdapterMixin "
                            f"(class {type(adapter).__name__}(InvoiceAdapterMixin, HostAdapter)).")
                    loaded[entity] = adapter
                self._by_entity = loaded
            return self._by_entity

    def get(self, entity: str) -> HostAdapter:
        try:
            return self._load()[entity]
        except KeyError:
            raise QboConfigurationError(
                f"No adapter is registered for {entity}; add it to QBO_SYNC['ENTITY_ADAPTERS']."
            ) from None

    def for_model(self, model: type[models.Model]) -> HostAdapter | None:
        for adapter in self._load().values():
            if adapter.model is model or adapter.model._meta.concrete_model is model._meta.concrete_model:
                return adapter
        return None

    def entities(self) -> list[str]:
        return list(self._load())

    def models(self) -> list[type[models.Model]]:
        return [adapter.model for adapter in self._load().values()]


registry = AdapterRegistry()
on_reload(registry.reset)
get_adapter = registry.get


def get_invoice_adapter() -> InvoiceAdapterMixin:
    """The invoice adapter, typed with its invoice hooks (``is_void``, ``apply_payment_state`` ...)."""
    adapter = registry.get(INVOICE)
    if not isinstance(adapter, InvoiceAdapterMixin):  # the registry refuses such an adapter when it loads
        raise QboConfigurationError(f"The {INVOICE} adapter must mix in qbo_sync.adapters.InvoiceAdapterMixin.")
    return adapter
