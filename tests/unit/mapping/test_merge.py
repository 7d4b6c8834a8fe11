import datetime as dt
from decimal import Decimal

import pytest

from qbo_sync.mapping import customers, items, payments
from qbo_sync.mapping.base import MappingError
from qbo_sync.mapping.merge import merge

T0 = dt.datetime(2020, 9, 29, 12, 0, tzinfo=dt.UTC)
EARLIER = T0 - dt.timedelta(hours=1)
LATER = T0 + dt.timedelta(hours=1)

CUSTOMER = {
    "display_name": "Amy's Bird Sanctuary",
    "company_name": "Amy's Bird Sanctuary",
    "given_name": "Amy",
    "family_name": "Lauterbach",
    "email": "birds@intuit.com",
    "phone": "(650) 555-3311",
    "bill_line1": "4581 Finch St.",
    "bill_line2": "",
    "bill_city": "Bayshore",
    "bill_region": "CA",
    "bill_postal_code": "94326",
    "bill_country": "",
    "active": True,
}
ITEM = {
    "name": "Rock Fountain",
    "sku": "RF-1",
    "description": "Rock Fountain",
    "unit_price": Decimal("275.00"),
    "type": "Inventory",
    "active": True,
}


def with_(values, **changes):
    return {**values, **changes}


def test_nothing_changed():
    result = merge(customers.SPEC, CUSTOMER, CUSTOMER, CUSTOMER, host_updated_at=T0, qbo_updated_at=T0)
    assert (result.to_host, result.to_qbo, result.conflicts) == ({}, {}, [])
    assert result.new_base == CUSTOMER
    assert not result.has_changes


def test_host_change_goes_to_qbo_without_conflict():
    host = with_(CUSTOMER, phone="(650) 555-0000")
    result = merge(customers.SPEC, CUSTOMER, host, CUSTOMER, host_updated_at=EARLIER, qbo_updated_at=LATER)
    assert result.to_qbo == {"phone": "(650) 555-0000"}
    assert result.to_host == {}
    assert result.conflicts == []
    assert result.new_base == host


def test_qbo_change_goes_to_host_without_conflict():
    qbo = with_(CUSTOMER, email="amy@example.com")
    result = merge(customers.SPEC, CUSTOMER, CUSTOMER, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"email": "amy@example.com"}
    assert result.to_qbo == {}
    assert result.conflicts == []
    assert result.new_base == qbo


def test_different_fields_changed_on_both_sides_merge():
    host = with_(CUSTOMER, phone="(650) 555-0000")
    qbo = with_(CUSTOMER, bill_city="Half Moon Bay")
    result = merge(customers.SPEC, CUSTOMER, host, qbo, host_updated_at=T0, qbo_updated_at=T0)
    assert result.to_qbo == {"phone": "(650) 555-0000"}
    assert result.to_host == {"bill_city": "Half Moon Bay"}
    assert result.conflicts == []
    assert result.new_base == with_(CUSTOMER, phone="(650) 555-0000", bill_city="Half Moon Bay")


def test_same_change_on_both_sides_is_no_conflict():
    host = with_(CUSTOMER, phone="1")
    result = merge(customers.SPEC, CUSTOMER, host, host, host_updated_at=T0, qbo_updated_at=LATER)
    assert (result.to_host, result.to_qbo, result.conflicts) == ({}, {}, [])


def test_normalised_equality_is_no_change():
    host = with_(CUSTOMER, email="Birds@Intuit.COM", bill_line2=None)
    result = merge(customers.SPEC, CUSTOMER, host, CUSTOMER, host_updated_at=LATER, qbo_updated_at=T0)
    assert (result.to_host, result.to_qbo, result.conflicts) == ({}, {}, [])


@pytest.mark.parametrize(
    ("host_at", "qbo_at", "winner", "rule"),
    [
        (LATER, EARLIER, "host", "newest_wins"),
        (EARLIER, LATER, "qbo", "newest_wins"),
        (T0, T0, "qbo", "newest_wins_tie_qbo"),
    ],
)
def test_same_field_conflict_newest_wins(host_at, qbo_at, winner, rule):
    host = with_(CUSTOMER, phone="host phone")
    qbo = with_(CUSTOMER, phone="qbo phone")
    result = merge(customers.SPEC, CUSTOMER, host, qbo, host_updated_at=host_at, qbo_updated_at=qbo_at)
    [conflict] = result.conflicts
    assert conflict.field == "phone"
    assert (conflict.base, conflict.host, conflict.qbo) == ("(650) 555-3311", "host phone", "qbo phone")
    assert (conflict.host_updated_at, conflict.qbo_updated_at) == (host_at, qbo_at)
    assert (conflict.winner, conflict.rule) == (winner, rule)
    assert not conflict.first_link
    if winner == "host":
        assert result.to_qbo == {"phone": "host phone"} and result.to_host == {}
    else:
        assert result.to_host == {"phone": "qbo phone"} and result.to_qbo == {}
    assert result.new_base["phone"] == conflict.winning_value
    assert "phone" in conflict.describe()


def test_newest_compares_instants_across_offsets():
    pacific = dt.timezone(dt.timedelta(hours=-7))
    host_at = dt.datetime(2020, 9, 29, 6, 0, tzinfo=pacific)  # 13:00 UTC
    qbo_at = dt.datetime(2020, 9, 29, 12, 30, tzinfo=dt.UTC)
    result = merge(
        customers.SPEC,
        CUSTOMER,
        with_(CUSTOMER, phone="h"),
        with_(CUSTOMER, phone="q"),
        host_updated_at=host_at,
        qbo_updated_at=qbo_at,
    )
    assert result.conflicts[0].winner == "host"


def test_naive_timestamps_refused():
    with pytest.raises(MappingError, match="aware"):
        merge(customers.SPEC, None, CUSTOMER, CUSTOMER, host_updated_at=dt.datetime(2020, 1, 1), qbo_updated_at=T0)


def test_item_price_always_follows_qbo_and_the_overwrite_is_recorded():
    host = with_(ITEM, unit_price=Decimal("250.00"))
    # The host edit is newer, and QBO did not touch the price: QBO still wins.
    result = merge(items.SPEC, ITEM, host, ITEM, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"unit_price": Decimal("275.00")}
    assert result.to_qbo == {}
    [conflict] = result.conflicts
    assert (conflict.field, conflict.rule, conflict.winner) == ("unit_price", "qbo_owns", "qbo")
    assert (conflict.base, conflict.host, conflict.qbo) == (Decimal("275.00"), Decimal("250.00"), Decimal("275.00"))
    assert result.new_base["unit_price"] == Decimal("275.00")


def test_item_price_changed_on_both_sides_qbo_wins():
    host = with_(ITEM, unit_price=Decimal("250.00"), active=False)
    qbo = with_(ITEM, unit_price=Decimal("300.00"))
    result = merge(items.SPEC, ITEM, host, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"unit_price": Decimal("300.00"), "active": True}
    assert {c.field: c.rule for c in result.conflicts} == {"unit_price": "qbo_owns", "active": "qbo_owns"}


def test_item_price_changed_only_in_qbo_is_applied_silently():
    qbo = with_(ITEM, unit_price="300")  # money given as text still compares as money
    result = merge(items.SPEC, ITEM, ITEM, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"unit_price": "300"}
    assert result.conflicts == []


def test_item_price_same_value_different_type_is_no_change():
    qbo = with_(ITEM, unit_price=275)
    result = merge(items.SPEC, ITEM, ITEM, qbo, host_updated_at=T0, qbo_updated_at=T0)
    assert (result.to_host, result.to_qbo, result.conflicts) == ({}, {}, [])


def test_description_owned_by_host_when_it_changed_it():
    host = with_(ITEM, description="Hand-carved granite fountain")
    qbo = with_(ITEM, description="Fountain (accountant)")
    result = merge(items.SPEC, ITEM, host, qbo, host_updated_at=EARLIER, qbo_updated_at=LATER)
    assert result.to_qbo == {"description": "Hand-carved granite fountain"}
    [conflict] = result.conflicts
    assert (conflict.rule, conflict.winner) == ("host_owns", "host")


def test_description_changed_only_in_qbo_reaches_the_host():
    qbo = with_(ITEM, description="Fountain (accountant)")
    result = merge(items.SPEC, ITEM, ITEM, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"description": "Fountain (accountant)"}
    assert result.conflicts == []


def test_critical_field_is_held_and_nothing_written():
    host = with_(CUSTOMER, email="host@example.com", phone="new phone")
    qbo = with_(CUSTOMER, email="qbo@example.com")
    result = merge(
        customers.SPEC,
        CUSTOMER,
        host,
        qbo,
        host_updated_at=LATER,
        qbo_updated_at=EARLIER,
        critical_fields=frozenset({"email"}),
    )
    assert "email" not in result.to_host and "email" not in result.to_qbo
    assert result.to_qbo == {"phone": "new phone"}  # the rest still merges
    [conflict] = result.conflicts
    assert (conflict.field, conflict.winner, conflict.rule) == ("email", None, "critical_held")
    assert conflict.held and result.held == [conflict]
    assert result.new_base["email"] == CUSTOMER["email"]  # held fields keep their base value


def test_critical_field_changed_on_one_side_only_still_syncs():
    qbo = with_(CUSTOMER, email="qbo@example.com")
    result = merge(
        customers.SPEC, CUSTOMER, CUSTOMER, qbo, host_updated_at=T0, qbo_updated_at=T0,
        critical_fields=frozenset({"email"}),
    )
    assert result.to_host == {"email": "qbo@example.com"}
    assert result.conflicts == []


def test_first_link_newest_wins_and_is_recorded():
    host = with_(CUSTOMER, phone="host phone")
    result = merge(customers.SPEC, None, host, CUSTOMER, host_updated_at=EARLIER, qbo_updated_at=LATER)
    assert result.to_host == {"phone": CUSTOMER["phone"]}
    [conflict] = result.conflicts
    assert conflict.first_link and conflict.base is None
    assert (conflict.winner, conflict.rule) == ("qbo", "newest_wins")
    assert result.new_base == CUSTOMER


def test_first_link_qbo_owned_fields_take_qbo_values_even_if_host_is_newer():
    host = with_(ITEM, unit_price=Decimal("1.00"), description="Batchly text")
    qbo = with_(ITEM, description="QBO text")
    result = merge(items.SPEC, None, host, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_host == {"unit_price": Decimal("275.00")}
    # A host-owned field cannot be known to be host-changed without a base: newest wins.
    assert result.to_qbo == {"description": "Batchly text"}
    assert {c.field: (c.rule, c.winner) for c in result.conflicts} == {
        "unit_price": ("qbo_owns", "qbo"),
        "description": ("newest_wins", "host"),
    }


def test_first_link_held_critical_field_is_left_out_of_the_base():
    result = merge(
        customers.SPEC, None, with_(CUSTOMER, email="a@x.com"), CUSTOMER, host_updated_at=T0, qbo_updated_at=T0,
        critical_fields=frozenset({"email"}),
    )
    assert "email" not in result.new_base
    assert result.conflicts[0].held


def test_fields_missing_from_one_side_are_not_synced():
    host = {k: v for k, v in CUSTOMER.items() if k != "bill_country"}
    qbo = with_(CUSTOMER, bill_country="USA")
    base = with_(CUSTOMER, bill_country="US")
    result = merge(customers.SPEC, base, host, qbo, host_updated_at=T0, qbo_updated_at=T0)
    assert "bill_country" not in result.to_host
    assert result.new_base["bill_country"] == "US"


def test_pull_only_spec_never_writes_to_qbo():
    base = {"amount_paid": Decimal("0"), "amount_due": Decimal("100"), "payment_status": "open",
            "last_payment_date": None, "last_payment_id": None}
    host = with_(base, payment_status="paid")
    qbo = with_(base, amount_paid=Decimal("100"), amount_due=Decimal("0"), payment_status="paid",
                last_payment_id="31")
    result = merge(payments.SPEC, base, host, qbo, host_updated_at=LATER, qbo_updated_at=EARLIER)
    assert result.to_qbo == {}
    assert result.to_host == {"amount_paid": Decimal("100"), "amount_due": Decimal("0"), "last_payment_id": "31"}


@pytest.mark.parametrize(("host", "qbo"), [("host@example.com", "birds@intuit.com"),  # one-sided: host
                                           ("birds@intuit.com", "qbo@example.com"),  # one-sided: QBO
                                           ("host@example.com", "qbo@example.com")])  # both
def test_a_held_field_is_never_written_and_keeps_its_base(host, qbo) -> None:
    result = merge(customers.SPEC, CUSTOMER, with_(CUSTOMER, email=host, phone="1"), with_(CUSTOMER, email=qbo),
                   host_updated_at=LATER, qbo_updated_at=EARLIER, held={"email"})
    assert "email" not in result.to_host and "email" not in result.to_qbo
    assert result.to_qbo == {"phone": "1"}  # the other fields merge as usual
    assert result.new_base["email"] == CUSTOMER["email"]
    [conflict] = result.conflicts
    assert (conflict.field, conflict.host, conflict.qbo, conflict.rule, conflict.held) == (
        "email", host, qbo, "critical_held", True)


def test_a_held_field_both_sides_agree_on_raises_nothing() -> None:
    same = with_(CUSTOMER, email="same@example.com")
    result = merge(customers.SPEC, CUSTOMER, same, same, host_updated_at=LATER, qbo_updated_at=EARLIER,
                   held={"email"})
    assert not result.conflicts and not result.has_changes and result.new_base["email"] == CUSTOMER["email"]
