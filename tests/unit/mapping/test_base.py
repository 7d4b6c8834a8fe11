import datetime as dt
import json
from decimal import Decimal

import pytest

from qbo_sync.mapping import base
from qbo_sync.mapping.base import FieldKind, MappingError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (100, Decimal("100")),
        (100.0, Decimal("100.0")),
        (0.1, Decimal("0.1")),  # not 0.1000000000000000055511151231257827...
        ("12.345", Decimal("12.345")),
        (Decimal("7.10"), Decimal("7.10")),
    ],
)
def test_parse_decimal_is_exact(raw, expected):
    result = base.parse_decimal(raw)
    assert isinstance(result, Decimal)
    assert result == expected
    assert str(result) == str(expected)


@pytest.mark.parametrize("raw", [None, True, "abc", float("nan"), "Infinity", [1]])
def test_parse_decimal_refuses_non_numbers(raw):
    with pytest.raises(MappingError):
        base.parse_decimal(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(459, "459.00"), (239.0, "239.00"), ("0.005", "0.01"), ("2.675", "2.68"), (0.1 + 0.2, "0.30")],
)
def test_money_quantizes_half_up_to_cents(raw, expected):
    assert str(base.money(raw)) == expected


def test_parse_datetime_keeps_the_instant_and_returns_utc():
    parsed = base.parse_datetime("2020-09-29T05:58:16-07:00")
    assert parsed == dt.datetime(2020, 9, 29, 12, 58, 16, tzinfo=dt.UTC)
    assert parsed.tzinfo is dt.UTC
    assert base.parse_datetime("2020-09-29T06:00:07.195-07:00").microsecond == 195000
    assert base.parse_datetime("2020-09-29T12:58:16Z") == parsed


def test_parse_datetime_refuses_naive_and_garbage():
    with pytest.raises(MappingError, match="offset"):
        base.parse_datetime("2020-09-29T05:58:16")
    with pytest.raises(MappingError):
        base.parse_datetime("yesterday")


def test_parse_date():
    assert base.parse_date("2020-04-05") == dt.date(2020, 4, 5)
    assert base.parse_date(None) is None
    assert base.parse_date("") is None
    with pytest.raises(MappingError):
        base.parse_date("05/04/2020")


def test_meta_updated_at_accepts_wrapped_and_bare_payloads(payload):
    wrapped = payload("customer_full_update_response.json")
    expected = dt.datetime(2020, 9, 29, 13, 0, 7, tzinfo=dt.UTC)
    assert base.meta_updated_at(wrapped, "Customer") == expected
    assert base.meta_updated_at(wrapped["Customer"], "Customer") == expected
    with pytest.raises(MappingError, match="LastUpdatedTime"):
        base.meta_updated_at({"Id": "1"}, "Customer")


@pytest.mark.parametrize(
    ("kind", "left", "right", "equal"),
    [
        (FieldKind.TEXT, None, "", True),
        (FieldKind.TEXT, " Jane ", "Jane", True),
        (FieldKind.TEXT, "Jane", "jane", False),
        (FieldKind.EMAIL, "Jane@Example.com", "jane@example.COM ", True),
        (FieldKind.MONEY, "12.5", Decimal("12.50"), True),
        (FieldKind.MONEY, 12.5, Decimal("12.51"), False),
        (FieldKind.DECIMAL, Decimal("1.0"), 1, True),
        (FieldKind.DATE, "2020-01-02", dt.date(2020, 1, 2), True),
        (FieldKind.BOOL, True, False, False),
    ],
)
def test_normalize(kind, left, right, equal):
    assert (base.normalize(kind, left) == base.normalize(kind, right)) is equal


def test_jsonable_writes_exact_money_text():
    payload = {"Amount": Decimal("1234567.89"), "Qty": Decimal("4"), "When": dt.date(2020, 1, 2), "L": [Decimal("0.1")]}
    text = json.dumps(base.jsonable(payload))
    assert text == '{"Amount": 1234567.89, "Qty": 4, "When": "2020-01-02", "L": [0.1]}'
    assert json.loads(text, parse_float=Decimal)["Amount"] == Decimal("1234567.89")


def test_spec_refuses_unknown_fields():
    with pytest.raises(ValueError, match="unknown"):
        base.EntitySpec("X", base.Direction.BOTH, ("a",), policies={"b": base.Policy.QBO_OWNS})
    with pytest.raises(ValueError, match="critical"):
        base.EntitySpec("X", base.Direction.BOTH, ("a",), critical_fields=frozenset({"b"}))


def test_expand_groups_fills_in_the_rest_of_a_nested_object():
    from qbo_sync.mapping import customers

    full = {"bill_line1": "1 Main", "bill_city": "Springfield", "bill_region": "CA", "email": "a@b.c"}
    assert base.expand_groups(customers.SPEC, {"bill_city": "Shelbyville"}, full) == {
        "bill_city": "Shelbyville",
        "bill_line1": "1 Main",
        "bill_region": "CA",
    }
    assert base.expand_groups(customers.SPEC, {"email": "x@y.z"}, full) == {"email": "x@y.z"}


def test_registry_has_no_sales_orders():
    from qbo_sync import mapping

    assert set(mapping.MAPPERS) == {"Customer", "Item", "Invoice", "Payment"}
    with pytest.raises(KeyError, match="SalesOrder"):
        mapping.get_mapper("SalesOrder")
    assert mapping.get_mapper("Item").SPEC.qbo_name == "Item"
