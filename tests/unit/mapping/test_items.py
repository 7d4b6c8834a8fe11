import datetime as dt
from decimal import Decimal

import pytest

from qbo_sync.mapping import items
from qbo_sync.mapping.base import Direction, MappingError, Policy


def test_spec_policies_follow_issue_5():
    spec = items.SPEC
    assert spec.direction is Direction.BOTH
    assert spec.policy_for("unit_price") is Policy.QBO_OWNS
    assert spec.policy_for("active") is Policy.QBO_OWNS
    assert spec.policy_for("description") is Policy.HOST_OWNS
    assert spec.policy_for("name") is Policy.NEWEST_WINS
    assert spec.policy_for("taxable") is Policy.QBO_OWNS  # issue 15: QBO owns the tax setup as it owns price
    assert spec.qbo_owned_fields == {"unit_price", "taxable", "active"}


def test_from_qbo_inventory_item(payload):
    values = items.from_qbo(payload("item_inventory_response.json"))
    assert values == {
        "name": "Rock Fountain",
        "sku": "",
        "description": "Rock Fountain",
        "unit_price": Decimal("275"),
        "type": "Inventory",
        "taxable": True,
        "active": True,
    }
    assert isinstance(values["unit_price"], Decimal)


def test_from_qbo_item_without_price(payload):
    values = items.from_qbo(payload("item_service_create_response.json"))
    assert values["unit_price"] == Decimal("0")
    assert values["type"] == "Service"


def test_create_payload_needs_income_account():
    values = {"name": "Garden Design", "type": "Service", "unit_price": Decimal("120.50"), "active": True}
    with pytest.raises(MappingError, match="income_account_ref"):
        items.to_qbo(values)
    body = items.to_qbo(values, income_account_ref="1")
    assert body == {
        "Name": "Garden Design",
        "Type": "Service",
        "UnitPrice": Decimal("120.50"),
        "Active": True,
        "IncomeAccountRef": {"value": "1"},
    }
    assert items.to_qbo(values, income_account_ref={"value": "79", "name": "Sales"})["IncomeAccountRef"] == {
        "value": "79",
        "name": "Sales",
    }


def test_create_inventory_item_needs_its_accounts():
    values = {"name": "Rock Fountain", "type": "Inventory", "unit_price": Decimal("275")}
    with pytest.raises(MappingError, match="asset_account_ref"):
        items.to_qbo(values, income_account_ref="79")
    body = items.to_qbo(
        values,
        income_account_ref="79",
        expense_account_ref="80",
        asset_account_ref="81",
        inv_start_date=dt.date(2014, 9, 19),
    )
    assert body["TrackQtyOnHand"] is True
    assert body["InvStartDate"] == "2014-09-19"
    assert body["QtyOnHand"] == Decimal("0")


def test_round_trip(payload):
    qbo = payload("item_inventory_response.json")
    values = items.from_qbo(qbo)
    body = items.to_qbo(values, qbo_id="5", sync_token="2")
    assert body["sparse"] is True
    assert items.from_qbo(body) == values


def test_sparse_price_update_keeps_exact_decimal():
    body = items.to_qbo({"unit_price": "0.125"}, qbo_id="5", sync_token="2")
    assert body == {"Id": "5", "SyncToken": "2", "sparse": True, "UnitPrice": Decimal("0.125")}


def test_unknown_type_refused():
    with pytest.raises(MappingError, match="type"):
        items.to_qbo({"name": "X", "type": "Bundle"}, income_account_ref="1")


def test_qbo_updated_at(payload):
    assert items.qbo_updated_at(payload("item_inventory_response.json")) == dt.datetime(
        2014, 9, 19, 20, 16, 17, tzinfo=dt.UTC
    )


def test_natural_keys():
    assert items.SPEC.natural_key_values({"name": " Rock  Fountain", "sku": " RF-1 "}) == {
        "name": "rock fountain", "sku": "RF-1"}
    assert items.SPEC.natural_key_values({"name": "X", "sku": ""}) == {"name": "x"}


def test_taxable_both_ways():
    payload = items.to_qbo({"name": "Mulch", "taxable": False}, income_account_ref="79")
    assert payload["Taxable"] is False
    assert "Taxable" not in items.to_qbo({"name": "Mulch"}, income_account_ref="79")  # a host without taxability
    assert items.from_qbo({"Item": {"Name": "Mulch", "Taxable": True}})["taxable"] is True
    assert items.from_qbo({"Item": {"Name": "Mulch"}})["taxable"] is False
