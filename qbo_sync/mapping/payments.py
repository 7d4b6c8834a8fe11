"""Payments: pull only. What QBO's payments did to a synced invoice, as a host-facing payment state.

The state of an invoice (canonical fields of :data:`SPEC`):

* ``amount_paid`` = ``TotalAmt - Balance``; ``amount_due`` = ``Balance`` (both ``Decimal``, to cents);
* ``payment_status``, first match wins:

  1. ``"void"`` — QBO voided the invoice (``TotalAmt`` 0 and ``PrivateNote`` starting "Voided"; QBO has no
     void flag). Nothing is paid or due.
  2. ``"paid"`` — ``Balance == 0`` and ``TotalAmt > 0``;
  3. ``"partial"`` — ``0 < Balance < TotalAmt``. A part-paid invoice past its due date stays "partial" (money
     has come in); use :func:`is_past_due` to flag it as late as well;
  4. ``"overdue"`` — ``Balance > 0`` and ``DueDate < today``;
  5. ``"open"`` — anything else (including a zero-total invoice that was not voided).

* ``last_payment_date`` / ``last_payment_id`` — the linked payment with the latest ``TxnDate`` (ties: the
  later ``MetaData.LastUpdatedTime``, then the higher numeric Id). Without payment payloads: the date is
  ``None`` and the id is the numerically highest ``Payment`` entry of the invoice's ``LinkedTxn`` — QBO
  assigns ids in increasing order, while ``LinkedTxn`` order is not chronological (sample invoice 71 lists
  payment 74 before 72).

Payments are never pushed: :func:`to_qbo` raises :class:`~qbo_sync.mapping.base.DirectionError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .base import (
    Direction,
    DirectionError,
    EntitySpec,
    FieldKind,
    MappingError,
    meta_updated_at,
    money,
    parse_date,
    text,
    unwrap,
)
from .invoices import is_voided

__all__ = [
    "SPEC",
    "PaymentStatus",
    "from_qbo",
    "is_past_due",
    "linked_invoice_ids",
    "payment_state",
    "qbo_updated_at",
    "to_qbo",
]

QBO_NAME = "Payment"


class PaymentStatus(StrEnum):
    PAID = "paid"
    PARTIAL = "partial"
    OVERDUE = "overdue"
    OPEN = "open"
    VOID = "void"


#: The payment-state fields written onto a host invoice; pull only, so QBO owns every one of them.
SPEC = EntitySpec(
    qbo_name=QBO_NAME,
    direction=Direction.PULL,
    fields=("amount_paid", "amount_due", "payment_status", "last_payment_date", "last_payment_id"),
    kinds={
        "amount_paid": FieldKind.MONEY,
        "amount_due": FieldKind.MONEY,
        "payment_status": FieldKind.RAW,
        "last_payment_date": FieldKind.DATE,
        "last_payment_id": FieldKind.RAW,
    },
)


def to_qbo(
    values: Mapping[str, Any],
    *,
    qbo_id: str | None = None,
    sync_token: str | None = None,
    sparse: bool = True,
    **context: Any,
) -> dict[str, Any]:
    """Always refused: payments are recorded in QBO by the accountant and never pushed."""
    raise DirectionError("payments are pull only; qbo_sync never pushes a payment")


def from_qbo(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Payment payload (bare or wrapped) as plain values.

    ``qbo_id``, ``txn_date`` (date), ``total_amount``, ``unapplied_amount`` (Decimal), ``customer_qbo_id``,
    ``applied``: {invoice id: amount applied to it} (summed when a payment has several lines for one invoice).
    """
    data = unwrap(payload, QBO_NAME)
    applied: dict[str, Decimal] = {}
    for line in data.get("Line") or []:
        amount = money(line.get("Amount", 0), field_name="Payment.Line.Amount")
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice":
                key = text(linked.get("TxnId"))
                applied[key] = applied.get(key, Decimal("0.00")) + amount
    return {
        "qbo_id": text(data.get("Id")),
        "txn_date": parse_date(data.get("TxnDate"), field_name="Payment.TxnDate"),
        "total_amount": money(data.get("TotalAmt", 0), field_name="Payment.TotalAmt"),
        "unapplied_amount": money(data.get("UnappliedAmt", 0), field_name="Payment.UnappliedAmt"),
        "customer_qbo_id": text((data.get("CustomerRef") or {}).get("value")),
        "applied": applied,
    }


def qbo_updated_at(payload: Mapping[str, Any]) -> dt.datetime:
    """``MetaData.LastUpdatedTime`` of a Payment as an aware UTC datetime."""
    return meta_updated_at(payload, QBO_NAME)


def linked_invoice_ids(payment: Mapping[str, Any]) -> list[str]:
    """The invoices a payment is applied to, in payload order, without repeats (for targeted pulls)."""
    return list(from_qbo(payment)["applied"])


def _linked_payment_ids(invoice: Mapping[str, Any]) -> list[str]:
    return [
        text(linked.get("TxnId"))
        for linked in invoice.get("LinkedTxn") or []
        if linked.get("TxnType") == "Payment" and linked.get("TxnId") is not None
    ]


def _id_order(qbo_id: str) -> tuple[int, str]:
    return (int(qbo_id), qbo_id) if qbo_id.isdigit() else (-1, qbo_id)


def _payment_links_invoice(payment: Mapping[str, Any], invoice_id: str, linked_ids: set[str]) -> bool:
    if payment.get("Line"):
        return invoice_id in from_qbo(payment)["applied"]
    # A payment without lines (e.g. fetched with a narrow SELECT) counts if the invoice lists it.
    return text(payment.get("Id")) in linked_ids


def _latest_payment(
    payments: Iterable[Mapping[str, Any]], invoice_id: str, linked_ids: set[str]
) -> tuple[dt.date | None, str | None]:
    best: tuple[Any, ...] | None = None
    best_id: str | None = None
    best_date: dt.date | None = None
    for raw in payments:
        payment = unwrap(raw, QBO_NAME)
        if not _payment_links_invoice(payment, invoice_id, linked_ids):
            continue
        pid = text(payment.get("Id"))
        txn_date = parse_date(payment.get("TxnDate"), field_name="Payment.TxnDate")
        stamp = (payment.get("MetaData") or {}).get("LastUpdatedTime")
        updated = meta_updated_at(payment, QBO_NAME) if stamp else dt.datetime.min.replace(tzinfo=dt.UTC)
        key = (txn_date or dt.date.min, updated, _id_order(pid))
        if best is None or key > best:
            best, best_id, best_date = key, pid, txn_date
    return best_date, best_id


def is_past_due(invoice_payload: Mapping[str, Any], today: dt.date) -> bool:
    """Whether an invoice has a balance and its due date is before ``today`` (whatever its status says)."""
    data = unwrap(invoice_payload, "Invoice")
    due = parse_date(data.get("DueDate"), field_name="DueDate")
    balance = money(data.get("Balance", 0), field_name="Balance")
    return balance > 0 and due is not None and due < today


def payment_state(
    invoice_payload: Mapping[str, Any],
    payments: Sequence[Mapping[str, Any]] | None,
    today: dt.date,
) -> dict[str, Any]:
    """The payment state of one QBO invoice (see the module docstring for every rule).

    ``payments`` are the Payment payloads linked to the invoice (bare or wrapped; payments that do not apply
    to this invoice are ignored); ``None`` or ``[]`` uses the ``LinkedTxn`` fallback. ``today`` is required —
    the mapping layer never reads the clock; pass the date in the company's time zone.
    """
    if not isinstance(today, dt.date):
        raise MappingError("payment_state needs today's date (the mapping layer does not read the clock)")
    data = unwrap(invoice_payload, "Invoice")
    if text(data.get("status")) == "Deleted":
        raise MappingError(f"Invoice {data.get('Id')!r} was deleted in QBO; it has no payment state")
    if "TotalAmt" not in data or "Balance" not in data:
        raise MappingError(f"Invoice {data.get('Id')!r} lacks TotalAmt or Balance")
    total = money(data["TotalAmt"], field_name="TotalAmt")
    balance = money(data["Balance"], field_name="Balance")
    due = parse_date(data.get("DueDate"), field_name="DueDate")

    if is_voided(data):
        status = PaymentStatus.VOID
    elif balance == 0 and total > 0:
        status = PaymentStatus.PAID
    elif 0 < balance < total:
        status = PaymentStatus.PARTIAL
    elif balance > 0 and due is not None and due < today:
        status = PaymentStatus.OVERDUE
    else:
        status = PaymentStatus.OPEN

    linked = _linked_payment_ids(data)
    last_date: dt.date | None = None
    last_id: str | None = None
    if payments:
        last_date, last_id = _latest_payment(payments, text(data.get("Id")), set(linked))
    if last_id is None and linked:
        last_id = max(linked, key=_id_order)

    if status is PaymentStatus.VOID:
        paid, due_amount = Decimal("0.00"), Decimal("0.00")
    else:
        paid, due_amount = total - balance, balance
    return {
        "amount_paid": paid,
        "amount_due": due_amount,
        "payment_status": status.value,
        "last_payment_date": last_date,
        "last_payment_id": last_id,
    }
