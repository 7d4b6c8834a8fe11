"""Invoice: push only. Validated before sending; voided, never edited once sent; QBO's total read back.

Canonical values here: doc_number, customer_qbo_id, txn_date (date), due_date (date | None), private_note,
lines: list of {item_qbo_id, description, qty (Decimal), unit_price (Decimal), amount (Decimal), and optionally
taxable (bool: the item's taxability)}, total (Decimal, the sum of the line amounts, before any tax QBO adds).

Sales tax: QBO decides it. A line whose values carry ``taxable`` is sent with ``TaxCodeRef`` ``TAX`` or ``NON``
(the only line codes a US company accepts); a line without it is sent without a code, as before. In a company
with automated sales tax nothing else is sent: QBO picks the rate from the customer's address and the lines'
codes, and ``TotalAmt``/``Balance`` in its answer include the tax (:func:`tax_amount` reads it back). In a
company with manual sales tax the push passes the configured tax code as context ``tax_code``, sent as
``TxnTaxDetail.TxnTaxCodeRef``; without one QBO would charge no tax, so the push refuses before sending
(:func:`validate` with ``tax_model="manual"``).

The host's invoice adapter does not know QBO ids: its ``to_values`` gives ``customer_object_id`` and, per line,
``item_object_id`` (the host rows' primary keys), and the push (``services.push``) replaces them with
``customer_qbo_id`` / ``item_qbo_id`` from the mappings before calling :func:`to_qbo`. See docs/adapters.md.

:func:`from_qbo` exists for reading back what QBO stored (tests, the total check, diagnostics), never to pull
an invoice into the host: the spec's direction is ``push``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .base import (
    MONEY_TOLERANCE,
    Direction,
    EntitySpec,
    FieldKind,
    MappingError,
    format_date,
    meta_updated_at,
    missing_fields,
    money,
    parse_date,
    parse_decimal,
    text,
    unwrap,
)

__all__ = [
    "DOC_NUMBER_MAX",
    "SPEC",
    "VOID_OPERATION",
    "TotalMismatch",
    "ValidationIssue",
    "compare_total",
    "from_qbo",
    "is_voided",
    "qbo_updated_at",
    "tax_amount",
    "to_qbo",
    "validate",
    "void_payload",
]

QBO_NAME = "Invoice"
DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
#: the ``operation`` query parameter of a void (``POST /invoice?operation=void``)
VOID_OPERATION = "void"
SALES_LINE = "SalesItemLineDetail"
#: the line tax codes of a US company: the line is taxable or not; the rate comes from the transaction
TAXABLE_CODE, NON_TAXABLE_CODE = "TAX", "NON"
#: how a company charges sales tax: QBO computes it (automated), the transaction names a code (manual), or none
TAX_MODELS = ("automated", "manual", "none")

SPEC = EntitySpec(
    qbo_name=QBO_NAME,
    direction=Direction.PUSH,
    fields=("doc_number", "customer_qbo_id", "txn_date", "due_date", "private_note", "lines", "total"),
    kinds={
        "txn_date": FieldKind.DATE,
        "due_date": FieldKind.DATE,
        "lines": FieldKind.RAW,
        "total": FieldKind.MONEY,
        "customer_qbo_id": FieldKind.TEXT,
    },
    # An invoice names a customer and items: they are sent first (in the same chunk, or as queued dependencies).
    depends_on=("Customer", "Item"),
    qbo_page="invoice?txnId=",
)


@dataclass(frozen=True)
class ValidationIssue:
    """One reason an invoice cannot be sent; ``field`` is a canonical path such as ``lines[2].amount``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class TotalMismatch:
    """QBO computed a different total than the host's.

    ``tax`` is QBO's ``TxnTaxDetail.TotalTax``: when ``actual - expected == tax`` the difference is sales tax
    QBO added, which :attr:`message` says so a person can tell a tax setting from a lost line.
    """

    expected: Decimal
    actual: Decimal
    tax: Decimal

    @property
    def difference(self) -> Decimal:
        return self.actual - self.expected

    @property
    def explained_by_tax(self) -> bool:
        return self.tax != 0 and abs(self.difference - self.tax) < MONEY_TOLERANCE

    @property
    def message(self) -> str:
        msg = f"QBO total {self.actual} differs from the host's total {self.expected} by {self.difference}"
        if self.explained_by_tax:
            msg += f" (QBO added sales tax of {self.tax})"
        return msg


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def validate(values: Mapping[str, Any], *, tax_model: str = "automated", tax_code: str = "") -> list[ValidationIssue]:
    """Every reason ``values`` cannot be pushed, in field order; an empty list means "send it".

    ``tax_model="manual"``: the company charges tax only on a transaction naming a tax code, so a missing
    ``tax_code`` (the one configured for the connection) is an issue when any line is taxable.

    Checks: a customer reference; at least one line; per line an item reference, quantity, unit price and
    amount that are numbers (never ``float``: money must be ``Decimal``) with ``amount == qty * unit_price``
    within half a cent (inclusive: rounding half up can leave exactly 0.005); ``total`` equal to the sum of
    line amounts and not negative; a transaction date, and a due date not before it; ``doc_number`` of at most
    21 characters; a private note within QBO's 4,000 characters.
    """
    issues: list[ValidationIssue] = []

    def add(name: str, message: str) -> None:
        issues.append(ValidationIssue(name, message))

    def number(name: str, value: Any) -> Decimal | None:
        if value is None or value == "":
            add(name, "is missing")
            return None
        if _is_float(value):
            add(name, f"must be a Decimal, not a float ({value!r})")
            return None
        try:
            return parse_decimal(value, field_name=name)
        except MappingError:
            add(name, f"is not a number ({value!r})")
            return None

    doc_number = text(values.get("doc_number"))
    if len(doc_number) > DOC_NUMBER_MAX:
        add("doc_number", f"is {len(doc_number)} characters long; QBO allows at most {DOC_NUMBER_MAX}")
    if not text(values.get("customer_qbo_id")).strip():
        add("customer_qbo_id", "the customer is not synced to QuickBooks yet")

    txn_date = values.get("txn_date")
    due_date = values.get("due_date")
    if not isinstance(txn_date, dt.date):
        add("txn_date", "is missing" if txn_date is None else f"is not a date ({txn_date!r})")
        txn_date = None
    if due_date is not None and not isinstance(due_date, dt.date):
        add("due_date", f"is not a date ({due_date!r})")
        due_date = None
    if isinstance(txn_date, dt.date) and isinstance(due_date, dt.date) and due_date < txn_date:
        add("due_date", f"{due_date.isoformat()} is before the invoice date {txn_date.isoformat()}")

    if len(text(values.get("private_note"))) > PRIVATE_NOTE_MAX:
        add("private_note", f"is longer than QBO's {PRIVATE_NOTE_MAX} characters")

    lines = values.get("lines") or []
    if not lines:
        add("lines", "an invoice needs at least one line")
    line_sum = Decimal("0")
    sum_known = True
    for index, line in enumerate(lines):
        prefix = f"lines[{index}]"
        if not text(line.get("item_qbo_id")).strip():
            add(f"{prefix}.item_qbo_id", "the item is not synced to QuickBooks yet")
        qty = number(f"{prefix}.qty", line.get("qty"))
        price = number(f"{prefix}.unit_price", line.get("unit_price"))
        amount = number(f"{prefix}.amount", line.get("amount"))
        if amount is None:
            sum_known = False
            continue
        line_sum += amount
        if qty is not None and price is not None and abs(qty * price - amount) > MONEY_TOLERANCE:
            add(f"{prefix}.amount", f"{amount} is not quantity {qty} x unit price {price} = {qty * price}")

    if tax_model == "manual" and not text(tax_code).strip() and any(line.get("taxable") for line in lines):
        add("tax_code", "the QuickBooks company uses manual sales tax and no tax code is configured "
            "(QBO_SYNC['TAX_CODE'] or the connection's tax code)")

    total = number("total", values.get("total"))
    if total is not None:
        if total < 0:
            add("total", f"{total} is negative; QBO does not accept a negative invoice")
        if sum_known and lines and abs(total - line_sum) > MONEY_TOLERANCE:
            add("total", f"{total} is not the sum of the lines ({line_sum})")
    return issues


def _line_payload(line: Mapping[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {"ItemRef": {"value": text(line["item_qbo_id"])}}
    if line.get("qty") is not None:
        detail["Qty"] = parse_decimal(line["qty"], field_name="qty")
    if line.get("unit_price") is not None:
        detail["UnitPrice"] = parse_decimal(line["unit_price"], field_name="unit_price")
    payload: dict[str, Any] = {
        "Amount": money(line["amount"], field_name="amount"),
        "DetailType": SALES_LINE,
        SALES_LINE: detail,
    }
    if line.get("taxable") is not None:
        detail["TaxCodeRef"] = {"value": TAXABLE_CODE if line["taxable"] else NON_TAXABLE_CODE}
    if text(line.get("description")):
        payload["Description"] = text(line["description"])
    return payload


def to_qbo(
    values: Mapping[str, Any],
    *,
    qbo_id: str | None = None,
    sync_token: str | None = None,
    sparse: bool = True,
    **context: Any,
) -> dict[str, Any]:
    """An Invoice payload for create (``qbo_id`` None) or update.

    ``total`` is never sent (QBO computes ``TotalAmt``; check it with :func:`compare_total`). Validation is
    the caller's step (:func:`validate`), but the payload refuses to build without a customer or lines on
    create. The services layer refuses to edit a sent invoice (a correction is void + new); the update form
    exists for completeness and sends only what ``values`` holds. Context ``tax_code`` (manual sales tax) is
    sent as ``TxnTaxDetail.TxnTaxCodeRef``.
    """
    creating = qbo_id is None
    if not creating and sync_token is None:
        raise MappingError("an Invoice update needs the current SyncToken")
    if not creating and not sparse:
        missing = missing_fields(SPEC, values, [f for f in SPEC.fields if f != "total"])
        if missing:
            raise MappingError(f"a full Invoice update needs every synced field; missing {missing}")
    payload: dict[str, Any] = {}
    if not creating:
        payload["Id"] = str(qbo_id)
        payload["SyncToken"] = str(sync_token)
        if sparse:
            payload["sparse"] = True
    if "customer_qbo_id" in values and text(values["customer_qbo_id"]):
        payload["CustomerRef"] = {"value": text(values["customer_qbo_id"])}
    if "doc_number" in values and (not creating or text(values["doc_number"])):
        payload["DocNumber"] = text(values["doc_number"])
    for name, key in (("txn_date", "TxnDate"), ("due_date", "DueDate")):
        if name in values and values[name] is not None:
            payload[key] = format_date(values[name])
    if "private_note" in values and (not creating or text(values["private_note"])):
        payload["PrivateNote"] = text(values["private_note"])
    if "lines" in values:
        payload["Line"] = [_line_payload(line) for line in values["lines"] or []]
    if text(context.get("tax_code")).strip():
        payload["TxnTaxDetail"] = {"TxnTaxCodeRef": {"value": text(context["tax_code"]).strip()}}
    if creating and ("CustomerRef" not in payload or not payload.get("Line")):
        raise MappingError("a new Invoice needs a customer and at least one line (run validate() first)")
    return payload


def from_qbo(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical values read back from an Invoice payload (bare or wrapped).

    Only ``SalesItemLineDetail`` lines are returned (QBO appends a ``SubTotalLineDetail`` line). A line
    without ``Qty``/``UnitPrice`` (allowed by QBO) reads as quantity 1 at the line amount. ``total`` is
    ``TotalAmt`` when QBO sent one (it includes tax), else the sum of the lines (a request payload has no
    ``TotalAmt``). A line with a ``TaxCodeRef`` reads ``taxable`` (anything but ``NON``).
    """
    data = unwrap(payload, QBO_NAME)
    lines: list[dict[str, Any]] = []
    for line in data.get("Line") or []:
        if line.get("DetailType") != SALES_LINE:
            continue
        detail = line.get(SALES_LINE) or {}
        amount = money(line.get("Amount", 0), field_name="Line.Amount")
        qty_raw = detail.get("Qty")
        price_raw = detail.get("UnitPrice")
        qty = Decimal("1") if qty_raw is None else parse_decimal(qty_raw, field_name="Qty")
        if price_raw is not None:
            price = parse_decimal(price_raw, field_name="UnitPrice")
        else:
            price = amount if qty in (0, 1) else amount / qty
        item = detail.get("ItemRef") or {}
        read: dict[str, Any] = {
            "item_qbo_id": text(item.get("value")),
            "description": text(line.get("Description")),
            "qty": qty,
            "unit_price": price,
            "amount": amount,
        }
        code = text((detail.get("TaxCodeRef") or {}).get("value"))
        if code:
            read["taxable"] = code != NON_TAXABLE_CODE
        lines.append(read)
    total_raw = data.get("TotalAmt")
    total = money(total_raw, field_name="TotalAmt") if total_raw is not None else money(
        sum((line["amount"] for line in lines), Decimal("0"))
    )
    return {
        "doc_number": text(data.get("DocNumber")),
        "customer_qbo_id": text((data.get("CustomerRef") or {}).get("value")),
        "txn_date": parse_date(data.get("TxnDate"), field_name="TxnDate"),
        "due_date": parse_date(data.get("DueDate"), field_name="DueDate"),
        "private_note": text(data.get("PrivateNote")),
        "lines": lines,
        "total": total,
    }


def qbo_updated_at(payload: Mapping[str, Any]) -> dt.datetime:
    """``MetaData.LastUpdatedTime`` as an aware UTC datetime."""
    return meta_updated_at(payload, QBO_NAME)


def tax_amount(payload: Mapping[str, Any]) -> Decimal:
    """The sales tax QBO charged on an invoice (``TxnTaxDetail.TotalTax``; 0 when absent), to cents."""
    data = unwrap(payload, QBO_NAME)
    return money((data.get("TxnTaxDetail") or {}).get("TotalTax") or 0, field_name="TxnTaxDetail.TotalTax")


def void_payload(qbo_id: str, sync_token: str) -> dict[str, Any]:
    """The body of ``POST /invoice?operation=void`` (send with :data:`VOID_OPERATION`)."""
    if not qbo_id or sync_token is None:
        raise MappingError("voiding needs the invoice's QBO Id and current SyncToken")
    return {"Id": str(qbo_id), "SyncToken": str(sync_token)}


def is_voided(payload: Mapping[str, Any]) -> bool:
    """QBO has no void flag: a voided invoice has ``TotalAmt`` 0 and a ``PrivateNote`` starting "Voided"."""
    data = unwrap(payload, QBO_NAME)
    total = data.get("TotalAmt")
    return (
        total is not None
        and parse_decimal(total, field_name="TotalAmt") == 0
        and text(data.get("PrivateNote")).startswith("Voided")
    )


def compare_total(
    values: Mapping[str, Any], qbo_payload: Mapping[str, Any], *, tax_included: bool = True
) -> TotalMismatch | None:
    """Compare the host's ``total`` with QBO's computed ``TotalAmt``; ``None`` when they agree within half a
    cent.

    By default the comparison is against ``TotalAmt`` as is, so sales tax added by QBO shows as a mismatch
    (explained in its message). Pass ``tax_included=False`` when the host's totals are pre-tax by design: then
    ``TotalAmt - TxnTaxDetail.TotalTax`` is compared.
    """
    data = unwrap(qbo_payload, QBO_NAME)
    if "TotalAmt" not in data:
        raise MappingError(f"Invoice {data.get('Id')!r} has no TotalAmt to compare")
    actual = money(data["TotalAmt"], field_name="TotalAmt")
    tax = money((data.get("TxnTaxDetail") or {}).get("TotalTax") or 0, field_name="TotalTax")
    expected = money(values["total"], field_name="total")
    compared = actual if tax_included else actual - tax
    if abs(compared - expected) <= MONEY_TOLERANCE:
        return None
    return TotalMismatch(expected=expected, actual=actual, tax=tax)


def lines_total(lines: Sequence[Mapping[str, Any]]) -> Decimal:
    """The sum of the lines' amounts, to cents."""
    return money(sum((parse_decimal(line["amount"]) for line in lines), Decimal("0")))
