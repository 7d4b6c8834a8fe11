"""Payments: pull only. What QBO's payments, credits and refunds did to a synced invoice, as a host-facing state.

How QBO records them: a customer's money is a ``Payment`` whose lines link the invoice; a credit memo is applied
by a ``Payment`` whose lines link the ``CreditMemo`` and the invoice (``TotalAmt`` 0 for a pure application, or
the cash part when cash and credit are combined); either way the invoice's ``Balance`` drops and its
``LinkedTxn`` lists the *payment*, never the credit memo. A ``RefundReceipt`` is money paid back to a customer;
QBO links it to nothing.

The state of an invoice (canonical fields of :data:`SPEC`):

* ``amount_credited`` — the part of ``TotalAmt - Balance`` settled by credit memos: per payment, a line linking
  both a credit memo and the invoice credits the invoice with its amount; credit on lines of their own is then
  spread over the payment's invoices in payload order, each up to what the payment applied to it. Known only
  from the Payment payloads: without them it is 0.
* ``amount_paid`` — money the customer paid: ``TotalAmt - Balance - amount_credited``;
* ``amount_refunded`` — money paid back, attributed by :func:`refunds_by_invoice` (QBO has no link): each
  customer's refund receipts go to that customer's invoices with money paid, newest ``TxnDate`` first (then the
  higher Id), each up to its ``amount_paid``; what is left over (a refund of an unapplied payment) is not shown
  on any invoice;
* ``amount_due`` = ``Balance`` (all ``Decimal``, to cents);
* ``payment_status``, first match wins:

  1. ``"void"`` — QBO voided the invoice (``TotalAmt`` 0 and ``PrivateNote`` starting "Voided"; QBO has no
     void flag). Nothing is paid or due.
  2. ``"credited"`` — ``Balance == 0``, ``TotalAmt > 0`` and no money paid: credit memos settled all of it;
  3. ``"refunded"`` — ``Balance == 0`` and every cent the customer paid was refunded;
  4. ``"paid"`` — ``Balance == 0`` and ``TotalAmt > 0`` (money, possibly with some credit);
  5. ``"partial"`` — ``0 < Balance < TotalAmt`` (money or credit has come in; the amounts tell which). A
     part-paid invoice past its due date stays "partial"; use :func:`is_past_due` to flag it as late as well;
  6. ``"overdue"`` — ``Balance > 0`` and ``DueDate < today``;
  7. ``"open"`` — anything else (including a zero-total invoice that was not voided).

* ``last_payment_date`` / ``last_payment_id`` — the linked payment with the latest ``TxnDate`` (ties: the
  later ``MetaData.LastUpdatedTime``, then the higher numeric Id). Without payment payloads: the date is
  ``None`` and the id is the numerically highest ``Payment`` entry of the invoice's ``LinkedTxn`` — QBO
  assigns ids in increasing order, while ``LinkedTxn`` order is not chronological (sample invoice 71 lists
  payment 74 before 72).

* ``tax_amount`` / ``total`` — what QBO decided the invoice is worth: ``TxnTaxDetail.TotalTax`` and ``TotalAmt``
  (which includes that tax), so a host can show subtotal, tax and total as the books do. Left out for a voided
  invoice (QBO zeroes its amounts; the host keeps what it billed). Hosts without tax fields ignore both.

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
from .invoices import is_voided, tax_amount

__all__ = [
    "SPEC",
    "PaymentStatus",
    "from_qbo",
    "is_past_due",
    "linked_invoice_ids",
    "payment_state",
    "qbo_updated_at",
    "refunds_by_invoice",
    "to_qbo",
]

QBO_NAME = "Payment"


class PaymentStatus(StrEnum):
    PAID = "paid"
    CREDITED = "credited"
    REFUNDED = "refunded"
    PARTIAL = "partial"
    OVERDUE = "overdue"
    OPEN = "open"
    VOID = "void"


#: The payment-state fields written onto a host invoice; pull only, so QBO owns every one of them.
SPEC = EntitySpec(
    qbo_name=QBO_NAME,
    direction=Direction.PULL,
    fields=("amount_paid", "amount_credited", "amount_refunded", "amount_due", "payment_status",
            "last_payment_date", "last_payment_id"),
    kinds={
        "amount_paid": FieldKind.MONEY,
        "amount_credited": FieldKind.MONEY,
        "amount_refunded": FieldKind.MONEY,
        "amount_due": FieldKind.MONEY,
        "payment_status": FieldKind.RAW,
        "last_payment_date": FieldKind.DATE,
        "last_payment_id": FieldKind.RAW,
    },
    # Payment state is written onto synced invoices (the invoice adapter's apply_payment_state).
    depends_on=("Invoice",),
    host_entity="Invoice",
    # A pull reads the invoices (Balance, LinkedTxn), the payments that settle them and the refund receipts QBO links
    # to nothing. A credit memo reaches an invoice through a Payment (and changes the invoice's Balance), so the
    # change feed never needs CreditMemo; its webhook event still asks for a payments pull.
    reads=("Invoice", "Payment", "RefundReceipt"),
    triggered_by=("Invoice", "Payment", "CreditMemo", "RefundReceipt"),
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
    ``applied``: {invoice id: amount applied to it} (summed when a payment has several lines for one invoice),
    ``credits_used``: {credit memo id: credit taken from it}, ``credited``: {invoice id: the part of its applied
    amount settled by credit} (the rule is in the module docstring).
    """
    data = unwrap(payload, QBO_NAME)
    zero = Decimal("0.00")
    applied: dict[str, Decimal] = {}
    credits_used: dict[str, Decimal] = {}
    credited: dict[str, Decimal] = {}
    pooled = zero
    for line in data.get("Line") or []:
        amount = money(line.get("Amount", 0), field_name="Payment.Line.Amount")
        linked = line.get("LinkedTxn") or []
        invoices = [text(x.get("TxnId")) for x in linked if x.get("TxnType") == "Invoice"]
        memos = [text(x.get("TxnId")) for x in linked if x.get("TxnType") == "CreditMemo"]
        for key in invoices:
            applied[key] = applied.get(key, zero) + amount
        for key in memos:
            credits_used[key] = credits_used.get(key, zero) + amount
        if memos and invoices:
            for key in invoices:
                credited[key] = credited.get(key, zero) + amount
        elif memos:
            pooled += amount * len(memos)
    for key, amount in applied.items():
        if pooled <= 0:
            break
        share = min(pooled, amount - credited.get(key, zero))
        if share > 0:
            credited[key] = credited.get(key, zero) + share
            pooled -= share
    return {
        "qbo_id": text(data.get("Id")),
        "txn_date": parse_date(data.get("TxnDate"), field_name="Payment.TxnDate"),
        "total_amount": money(data.get("TotalAmt", 0), field_name="Payment.TotalAmt"),
        "unapplied_amount": money(data.get("UnappliedAmt", 0), field_name="Payment.UnappliedAmt"),
        "customer_qbo_id": text((data.get("CustomerRef") or {}).get("value")),
        "applied": applied,
        "credits_used": credits_used,
        "credited": credited,
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


def _credited(payments: Iterable[Mapping[str, Any]], invoice_id: str) -> Decimal:
    total, seen = Decimal("0.00"), set()
    for raw in payments:
        payment = unwrap(raw, QBO_NAME)
        pid = text(payment.get("Id"))
        if pid in seen or not payment.get("Line"):
            continue
        seen.add(pid)
        total += from_qbo(payment)["credited"].get(invoice_id, Decimal("0.00"))
    return total


def refunds_by_invoice(
    invoices: Iterable[Mapping[str, Any]],
    payments: Sequence[Mapping[str, Any]],
    refunds: Iterable[Mapping[str, Any]],
) -> dict[str, Decimal]:
    """``{invoice id: amount refunded}``: each customer's RefundReceipts (deleted stubs and receipts without a
    customer are ignored) spread over that customer's ``invoices`` with money paid, newest ``TxnDate`` first (then
    the higher Id), each up to its ``amount_paid``. Pass every invoice of those customers that should share.
    """
    zero = Decimal("0.00")
    owed: dict[str, Decimal] = {}
    for raw in refunds:
        refund = unwrap(raw, "RefundReceipt")
        customer = text((refund.get("CustomerRef") or {}).get("value"))
        if text(refund.get("status")) == "Deleted" or not customer:
            continue
        owed[customer] = owed.get(customer, zero) + money(refund.get("TotalAmt", 0), field_name="TotalAmt")
    by_customer: dict[str, list[tuple[Any, ...]]] = {}
    seen: set[str] = set()
    for raw in invoices:
        data = unwrap(raw, "Invoice")
        iid, customer = text(data.get("Id")), text((data.get("CustomerRef") or {}).get("value"))
        if iid in seen or customer not in owed or is_voided(data) or "Balance" not in data:
            continue
        seen.add(iid)
        received = money(data.get("TotalAmt", 0), field_name="TotalAmt") - money(data["Balance"], field_name="Bal")
        paid = received - min(received, _credited(payments, iid))
        if paid > 0:
            txn_date = parse_date(data.get("TxnDate"), field_name="TxnDate") or dt.date.min
            by_customer.setdefault(customer, []).append((txn_date, _id_order(iid), iid, paid))
    out: dict[str, Decimal] = {}
    for customer, rows in by_customer.items():
        left = owed[customer]
        for _, _, iid, paid in sorted(rows, reverse=True):
            if left <= 0:
                break
            out[iid] = min(paid, left)
            left -= out[iid]
    return out


def payment_state(
    invoice_payload: Mapping[str, Any],
    payments: Sequence[Mapping[str, Any]] | None,
    today: dt.date,
    *,
    refunded: Decimal | None = None,
) -> dict[str, Any]:
    """The payment state of one QBO invoice (see the module docstring for every rule).

    ``payments`` are the Payment payloads linked to the invoice (bare or wrapped; payments that do not apply
    to this invoice are ignored); ``None`` or ``[]`` uses the ``LinkedTxn`` fallback and counts nothing as
    credited. ``refunded``: what :func:`refunds_by_invoice` attributed to it (capped at the money paid).
    ``today`` is required — the mapping layer never reads the clock; pass the date in the company's time zone.
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

    zero = Decimal("0.00")
    received = total - balance
    credited = min(max(received, zero), _credited(payments or (), text(data.get("Id"))))
    paid = received - credited
    refunded_amount = min(max(paid, zero), money(refunded or 0, field_name="refunded"))
    if is_voided(data):
        status = PaymentStatus.VOID
    elif balance == 0 and total > 0 and paid <= 0 and credited > 0:
        status = PaymentStatus.CREDITED
    elif balance == 0 and total > 0 and paid > 0 and refunded_amount >= paid:
        status = PaymentStatus.REFUNDED
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

    state: dict[str, Any] = {}
    if status is PaymentStatus.VOID:
        paid = credited = refunded_amount = due_amount = zero
    else:
        due_amount = balance
        state = {"tax_amount": tax_amount(data), "total": total}
    return {
        "amount_paid": paid,
        "amount_credited": credited,
        "amount_refunded": refunded_amount,
        "amount_due": due_amount,
        "payment_status": status.value,
        "last_payment_date": last_date,
        "last_payment_id": last_id,
        **state,
    }
