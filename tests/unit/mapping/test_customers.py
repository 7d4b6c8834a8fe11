import datetime as dt

import pytest

from qbo_sync.mapping import customers
from qbo_sync.mapping.base import Direction, MappingError

FULL = {
    "display_name": "Amy's Bird Sanctuary",
    "company_name": "Amy's Bird Sanctuary",
    "given_name": "Amy",
    "family_name": "Lauterbach",
    "email": "Birds@Intuit.com",
    "phone": "(650) 555-3311",
    "bill_line1": "4581 Finch St.",
    "bill_line2": "",
    "bill_city": "Bayshore",
    "bill_region": "CA",
    "bill_postal_code": "94326",
    "bill_country": "",
    "taxable": True,
    "active": True,
}


def test_spec():
    assert customers.SPEC.qbo_name == "Customer"
    assert customers.SPEC.direction is Direction.BOTH
    assert set(customers.SPEC.fields) == set(FULL)
    assert customers.SPEC.critical_fields == frozenset()  # issue 5: "default: none"


def test_from_qbo_reads_a_real_customer(payload):
    assert customers.from_qbo(payload("customer_1_with_address_response.json")) == FULL


def test_from_qbo_fills_absent_text_with_empty_strings(payload):
    values = customers.from_qbo(payload("customer_read_response.json"))
    assert values["display_name"] == "Doe2, Jane"
    assert values["email"] == ""
    assert values["bill_city"] == ""
    assert values["active"] is True
    assert all(v is not None for v in values.values())


def test_round_trip_through_a_create_payload():
    body = customers.to_qbo(FULL)
    assert "Id" not in body and "sparse" not in body
    assert body["PrimaryEmailAddr"] == {"Address": "Birds@Intuit.com"}
    assert body["BillAddr"] == {
        "Line1": "4581 Finch St.",
        "City": "Bayshore",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94326",
    }
    assert customers.from_qbo(body) == FULL


def test_create_leaves_out_empty_fields():
    body = customers.to_qbo({"display_name": "Doe5, Jane", "email": "", "phone": None, "active": True})
    assert body == {"DisplayName": "Doe5, Jane", "Active": True}


def test_create_needs_a_name():
    with pytest.raises(MappingError, match="display name"):
        customers.to_qbo({"email": "x@example.com"})
    assert customers.to_qbo({"given_name": "Jane"}) == {"GivenName": "Jane"}  # QBO derives DisplayName


def test_sparse_update_sends_only_given_fields_and_clears_empties():
    body = customers.to_qbo({"phone": "(415) 444-1234", "email": ""}, qbo_id="68", sync_token="1")
    assert body == {
        "Id": "68",
        "SyncToken": "1",
        "sparse": True,
        "PrimaryPhone": {"FreeFormNumber": "(415) 444-1234"},
        "PrimaryEmailAddr": {"Address": ""},
    }


def test_deactivate_is_a_sparse_active_false():
    body = customers.to_qbo({"active": False}, qbo_id="68", sync_token="1")
    assert body == {"Id": "68", "SyncToken": "1", "sparse": True, "Active": False}


def test_update_needs_sync_token_and_full_update_needs_every_field():
    with pytest.raises(MappingError, match="SyncToken"):
        customers.to_qbo({"phone": "1"}, qbo_id="68")
    with pytest.raises(MappingError, match="missing"):
        customers.to_qbo({"phone": "1"}, qbo_id="68", sync_token="0", sparse=False)
    full = customers.to_qbo(FULL, qbo_id="1", sync_token="0", sparse=False)
    assert "sparse" not in full
    assert full["BillAddr"]["Line2"] == ""


def test_qbo_updated_at(payload):
    assert customers.qbo_updated_at(payload("customer_full_update_response.json")) == dt.datetime(
        2020, 9, 29, 13, 0, 7, tzinfo=dt.UTC
    )


def test_natural_keys():
    assert customers.SPEC.natural_key_values({"display_name": "  Doe5,   JANE ", "email": " Jane@Example.COM"}) == {
        "display_name": "doe5, jane",
        "email": "jane@example.com",
    }
    assert customers.SPEC.natural_key_values({"display_name": "X", "email": ""}) == {"display_name": "x"}
    keys = customers.SPEC.natural_key_values
    assert keys({"display_name": "Straße"}) == keys({"display_name": "STRASSE"})


def test_taxable_both_ways_and_owned_by_qbo():
    from qbo_sync.mapping.base import Policy

    assert customers.SPEC.policy_for("taxable") is Policy.QBO_OWNS
    assert customers.to_qbo({"display_name": "School", "taxable": False})["Taxable"] is False  # tax-exempt
    assert "Taxable" not in customers.to_qbo({"display_name": "School"})
    assert customers.from_qbo({"Customer": {"DisplayName": "School", "Taxable": False}})["taxable"] is False
    assert customers.from_qbo({"Customer": {"DisplayName": "School"}})["taxable"] is True
