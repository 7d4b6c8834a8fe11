import datetime as dt
from decimal import Decimal

import pytest

from qbo_sync.mapping import invoices
from qbo_sync.mapping.base import Direction, DirectionError, MappingError
from qbo_sync.mapping.merge import merge

from .conftest import query_invoice


def valid_invoice(**overrides):
    values = {
        "doc_number": "1021",
        "customer_qbo_id": "1",
        "txn_date": dt.date(2020, 2, 16),
        "due_date": dt.date(2020, 3, 17),
        "private_note": "",
        "lines": [
            {
                "item_qbo_id": "15",
                "description": "2 cubic ft. bag",
                "qty": Decimal("15"),
                "unit_price": Decimal("10"),
                "amount": Decimal("150.00"),
            },
            {
                "item_qbo_id": "5",
                "description": "Rock Fountain",
                "qty": Decimal("1"),
                "unit_price": Decimal("275"),
                "amount": Decimal("275.00"),
            },
        ],
        "total": Decimal("425.00"),
    }
    values.update(overrides)
    return values


def messages(values):
    return {issue.field: issue.message for issue in invoices.validate(values)}


def test_spec_is_push_only_and_never_merged():
    assert invoices.SPEC.direction is Direction.PUSH
    with pytest.raises(DirectionError):
        now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        merge(invoices.SPEC, None, {}, {}, host_updated_at=now, qbo_updated_at=now)


def test_valid_invoice_has_no_issues():
    assert invoices.validate(valid_invoice()) == []


def test_validation_messages():
    values = valid_invoice(
        doc_number="X" * 22,
        customer_qbo_id="",
        txn_date=dt.date(2020, 3, 1),
        due_date=dt.date(2020, 2, 1),
        total=Decimal("400.00"),
    )
    values["lines"][0]["amount"] = Decimal("151.00")
    values["lines"][1]["item_qbo_id"] = None
    found = messages(values)
    assert found == {
        "doc_number": "is 22 characters long; QBO allows at most 21",
        "customer_qbo_id": "the customer is not synced to QuickBooks yet",
        "due_date": "2020-02-01 is before the invoice date 2020-03-01",
        "lines[0].amount": "151.00 is not quantity 15 x unit price 10 = 150",
        "lines[1].item_qbo_id": "the item is not synced to QuickBooks yet",
        "total": "400.00 is not the sum of the lines (426.00)",
    }
    assert str(invoices.validate(values)[0]) == "doc_number: is 22 characters long; QBO allows at most 21"


def test_validation_needs_lines_and_dates():
    found = messages(valid_invoice(lines=[], txn_date=None, total=Decimal("0")))
    assert found["lines"] == "an invoice needs at least one line"
    assert found["txn_date"] == "is missing"


def test_validation_refuses_float_money():
    values = valid_invoice()
    values["lines"][0]["unit_price"] = 10.0
    values["total"] = 425.0
    found = messages(values)
    assert found["lines[0].unit_price"] == "must be a Decimal, not a float (10.0)"
    assert found["total"] == "must be a Decimal, not a float (425.0)"


def test_validation_tolerates_half_a_cent_of_rounding():
    line = {"item_qbo_id": "1", "description": "", "qty": Decimal("3"), "unit_price": Decimal("0.333"),
            "amount": Decimal("1.00")}
    assert invoices.validate(valid_invoice(lines=[line], total=Decimal("1.00"))) == []
    line["amount"] = Decimal("1.01")
    assert "lines[0].amount" in messages(valid_invoice(lines=[line], total=Decimal("1.01")))


def test_negative_total_refused():
    line = {"item_qbo_id": "1", "description": "", "qty": Decimal("-1"), "unit_price": Decimal("5"),
            "amount": Decimal("-5.00")}
    assert messages(valid_invoice(lines=[line], total=Decimal("-5.00")))["total"].endswith("negative invoice")


def test_create_payload_shape():
    body = invoices.to_qbo(valid_invoice())
    assert body["CustomerRef"] == {"value": "1"}
    assert body["TxnDate"] == "2020-02-16"
    assert body["DueDate"] == "2020-03-17"
    assert body["DocNumber"] == "1021"
    assert "TotalAmt" not in body and "PrivateNote" not in body
    assert body["Line"][0] == {
        "Amount": Decimal("150.00"),
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "15"}, "Qty": Decimal("15"), "UnitPrice": Decimal("10")},
        "Description": "2 cubic ft. bag",
    }
    with pytest.raises(MappingError):
        invoices.to_qbo(valid_invoice(lines=[]))


def test_round_trip_create_payload():
    values = valid_invoice()
    assert invoices.from_qbo(invoices.to_qbo(values)) == values


def test_read_back_real_invoice():
    values = invoices.from_qbo(query_invoice("67"))
    assert values["customer_qbo_id"] == "1"
    assert values["txn_date"] == dt.date(2020, 2, 16)
    assert len(values["lines"]) == 2  # the SubTotalLineDetail line is skipped
    assert values["lines"][0]["amount"] == Decimal("150.00")
    assert values["total"] == Decimal("459.00")  # QBO's TotalAmt, tax included
    assert all(isinstance(line[k], Decimal) for line in values["lines"] for k in ("qty", "unit_price", "amount"))


def test_read_back_line_without_qty(payload):
    values = invoices.from_qbo(payload("invoice_read_open_response.json"))
    assert values["lines"] == [
        {"item_qbo_id": "1", "description": "", "qty": Decimal("1"), "unit_price": Decimal("100.00"),
         "amount": Decimal("100.00"), "taxable": False}  # the line's TaxCodeRef is NON
    ]


def test_void_payload_and_detection(payload):
    assert invoices.void_payload("264", "0") == {"Id": "264", "SyncToken": "0"}
    assert invoices.VOID_OPERATION == "void"
    assert invoices.is_voided(payload("invoice_void_response.json"))
    assert not invoices.is_voided(payload("invoice_read_open_response.json"))
    with pytest.raises(MappingError):
        invoices.void_payload("", "0")


def test_compare_total():
    assert invoices.compare_total({"total": Decimal("205.00")}, query_invoice("71")) is None
    mismatch = invoices.compare_total(valid_invoice(), query_invoice("67"))
    assert mismatch is not None
    assert (mismatch.expected, mismatch.actual, mismatch.tax) == (
        Decimal("425.00"),
        Decimal("459.00"),
        Decimal("34.00"),
    )
    assert mismatch.explained_by_tax
    assert mismatch.message == (
        "QBO total 459.00 differs from the host's total 425.00 by 34.00 (QBO added sales tax of 34.00)"
    )
    assert invoices.compare_total(valid_invoice(), query_invoice("67"), tax_included=False) is None
    lost_line = invoices.compare_total({"total": Decimal("300.00")}, query_invoice("71"))
    assert lost_line is not None and not lost_line.explained_by_tax


def test_qbo_updated_at(payload):
    assert invoices.qbo_updated_at(payload("invoice_paid_response.json")) == dt.datetime(
        2020, 3, 8, 20, 25, 20, tzinfo=dt.UTC
    )


def test_rounding_half_up_leaves_exactly_half_a_cent_and_is_accepted():
    line = {"item_qbo_id": "1", "description": "", "qty": Decimal("4.10"), "unit_price": Decimal("254.65"),
            "amount": Decimal("1044.07")}  # 1044.065 rounded half up
    assert invoices.validate(valid_invoice(lines=[line], total=Decimal("1044.07"))) == []


# --- sales tax (issue 15) -----------------------------------------------------------------------------------------


def taxed_lines(*flags):
    values = valid_invoice()
    for line, flag in zip(values["lines"], flags, strict=True):
        line["taxable"] = flag
    return values


def test_lines_carry_the_items_taxability_as_tax_or_non():
    payload = invoices.to_qbo(taxed_lines(True, False))
    codes = [line["SalesItemLineDetail"]["TaxCodeRef"] for line in payload["Line"]]
    assert codes == [{"value": "TAX"}, {"value": "NON"}]
    assert "TxnTaxDetail" not in payload  # automated tax: QBO picks the code and the rate


def test_a_host_without_taxability_sends_no_line_code():
    payload = invoices.to_qbo(valid_invoice())
    assert all("TaxCodeRef" not in line["SalesItemLineDetail"] for line in payload["Line"])


def test_manual_tax_sends_the_configured_code():
    payload = invoices.to_qbo(taxed_lines(True, False), tax_code="2")
    assert payload["TxnTaxDetail"] == {"TxnTaxCodeRef": {"value": "2"}}


def test_manual_tax_without_a_code_is_a_validation_issue():
    issues = invoices.validate(taxed_lines(True, False), tax_model="manual", tax_code="")
    assert [i.field for i in issues] == ["tax_code"]
    assert "manual sales tax" in issues[0].message and "TAX_CODE" in issues[0].message
    assert invoices.validate(taxed_lines(True, False), tax_model="manual", tax_code="2") == []
    assert invoices.validate(taxed_lines(False, False), tax_model="manual") == []  # nothing taxable: no code needed
    assert invoices.validate(taxed_lines(True, False), tax_model="automated") == []


def test_tax_amount_and_pre_tax_total_check():
    invoice = query_invoice("67")
    assert invoices.tax_amount(invoice) == Decimal("34.00")
    assert invoices.tax_amount({"Invoice": {"TxnTaxDetail": {"TotalTax": 0}}}) == Decimal("0.00")
    assert invoices.tax_amount({"Invoice": {}}) == Decimal("0.00")
    # The host's total is before tax: the push compares it with QBO's total less the tax it added.
    assert invoices.compare_total(valid_invoice(), invoice, tax_included=False) is None
