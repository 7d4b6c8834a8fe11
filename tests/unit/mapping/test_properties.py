"""Property tests: round trips keep every synced field; the merge never loses an unrecorded change."""

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from qbo_sync.mapping import customers, invoices, items
from qbo_sync.mapping.base import EntitySpec, money, values_equal
from qbo_sync.mapping.merge import MergeResult, merge

settings.register_profile("mapping", max_examples=150, deadline=None)
settings.load_profile("mapping")

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
NAME = TEXT.filter(lambda s: s.strip() != "")
PRICE = st.decimals(min_value=0, max_value=Decimal("999999"), places=2, allow_nan=False, allow_infinity=False)
EXACT_PRICE = st.one_of(
    PRICE, st.decimals(min_value=0, max_value=Decimal("9999"), places=5, allow_nan=False, allow_infinity=False)
)
QTY = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2, allow_nan=False, allow_infinity=False)
DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
AWARE = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=-7)), dt.timezone(dt.timedelta(hours=5, minutes=30))]
    )
)


def customer_values():
    fields = {name: TEXT for name in customers.SPEC.fields if name not in ("display_name", "taxable", "active")}
    return st.fixed_dictionaries({**fields, "display_name": NAME, "taxable": st.booleans(), "active": st.booleans()})


def item_values():
    return st.fixed_dictionaries(
        {
            "name": NAME,
            "sku": TEXT,
            "description": TEXT,
            "unit_price": EXACT_PRICE,
            "type": st.sampled_from(items.ITEM_TYPES),
            "taxable": st.booleans(),
            "active": st.booleans(),
        }
    )


@st.composite
def invoice_values(draw):
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        qty, price = draw(QTY), draw(PRICE)
        lines.append(
            {
                "item_qbo_id": str(draw(st.integers(1, 10_000))),
                "description": draw(TEXT).strip(),
                "qty": qty,
                "unit_price": price,
                "amount": money(qty * price),
            }
        )
    txn_date = draw(DATES)
    return {
        "doc_number": draw(st.text("0123456789-ABC", max_size=21)),
        "customer_qbo_id": str(draw(st.integers(1, 10_000))),
        "txn_date": txn_date,
        "due_date": txn_date + dt.timedelta(days=draw(st.integers(0, 90))),
        "private_note": draw(TEXT).strip(),
        "lines": lines,
        "total": money(sum((line["amount"] for line in lines), Decimal("0"))),
    }


def assert_same(spec: EntitySpec, left, right):
    for name in spec.fields:
        assert values_equal(spec, name, left[name], right[name]), (name, left[name], right[name])


@given(customer_values())
def test_customer_round_trip_create(values):
    assert_same(customers.SPEC, customers.from_qbo(customers.to_qbo(values)), values)


@given(customer_values())
def test_customer_round_trip_full_update(values):
    body = customers.to_qbo(values, qbo_id="1", sync_token="3", sparse=False)
    assert_same(customers.SPEC, customers.from_qbo(body), values)


@given(item_values())
def test_item_round_trip(values):
    back = items.from_qbo(items.to_qbo(values, income_account_ref="1", expense_account_ref="2",
                                       asset_account_ref="3", inv_start_date=dt.date(2020, 1, 1)))
    assert_same(items.SPEC, back, values)
    assert isinstance(back["unit_price"], Decimal)
    assert back["unit_price"] == values["unit_price"]  # exact, not just to the cent


@given(invoice_values())
def test_invoice_round_trip_and_valid(values):
    assert invoices.validate(values) == []
    assert invoices.from_qbo(invoices.to_qbo(values)) == values


# --- merge ---------------------------------------------------------------------------------------------------

CUSTOMER_CHOICES = {
    name: st.sampled_from(["", "a", "b", "A", " b ", None]) for name in customers.SPEC.fields
    if name not in ("taxable", "active")
}
CUSTOMER_CHOICES["taxable"] = st.booleans()
CUSTOMER_CHOICES["active"] = st.booleans()
ITEM_CHOICES = {
    "name": st.sampled_from(["x", "y", "z"]),
    "sku": st.sampled_from(["", "1", None]),
    "description": st.sampled_from(["", "d1", "d2"]),
    "unit_price": st.sampled_from([Decimal("1"), Decimal("1.00"), Decimal("2.5"), Decimal("3")]),
    "type": st.sampled_from(["Service", "NonInventory"]),
    "taxable": st.booleans(),
    "active": st.booleans(),
}


@st.composite
def merge_case(draw):
    spec, choices = draw(st.sampled_from([(customers.SPEC, CUSTOMER_CHOICES), (items.SPEC, ITEM_CHOICES)]))
    record = st.fixed_dictionaries(choices)
    base = draw(st.one_of(st.none(), record))
    host, qbo = draw(record), draw(record)
    critical = draw(st.frozensets(st.sampled_from(spec.fields), max_size=2))
    return spec, base, host, qbo, draw(AWARE), draw(AWARE), critical


def check_no_silent_loss(spec, base, host, qbo, result: MergeResult, critical):
    recorded = {c.field for c in result.conflicts}
    assert len(recorded) == len(result.conflicts)  # at most one conflict per field
    for name in spec.fields:
        h, q = host[name], qbo[name]
        if base is None:
            host_changed = qbo_changed = not values_equal(spec, name, h, q)
        else:
            host_changed = not values_equal(spec, name, h, base[name])
            qbo_changed = not values_equal(spec, name, q, base[name])
        if host_changed and not qbo_changed:
            assert (name in result.to_qbo and result.to_qbo[name] == h) or name in recorded, name
        if qbo_changed and not host_changed:
            assert name in result.to_host and result.to_host[name] == q, name
        if host_changed and qbo_changed and not values_equal(spec, name, h, q):
            assert name in recorded, name
        if not host_changed and not qbo_changed:
            assert name not in result.to_host and name not in result.to_qbo and name not in recorded, name
        assert not (name in result.to_host and name in result.to_qbo), name


@given(merge_case())
def test_merge_never_loses_an_unrecorded_change(case):
    spec, base, host, qbo, host_at, qbo_at, critical = case
    result = merge(spec, base, host, qbo, host_updated_at=host_at, qbo_updated_at=qbo_at, critical_fields=critical)
    check_no_silent_loss(spec, base, host, qbo, result, critical)


@given(merge_case())
def test_merge_converges_except_held_fields(case):
    spec, base, host, qbo, host_at, qbo_at, critical = case
    result = merge(spec, base, host, qbo, host_updated_at=host_at, qbo_updated_at=qbo_at, critical_fields=critical)
    host_after = {**host, **result.to_host}
    qbo_after = {**qbo, **result.to_qbo}
    held = {c.field for c in result.held}
    assert held <= critical
    for name in spec.fields:
        if name in held:
            assert name not in result.to_host and name not in result.to_qbo
            if base is None:
                assert name not in result.new_base
            else:
                assert result.new_base[name] == base[name]
        else:
            assert values_equal(spec, name, host_after[name], qbo_after[name]), name
            assert values_equal(spec, name, result.new_base[name], host_after[name]), name
    for conflict in result.conflicts:
        if conflict.winner == "host":
            assert result.to_qbo[conflict.field] == conflict.host
        elif conflict.winner == "qbo":
            assert result.to_host[conflict.field] == conflict.qbo


@given(merge_case())
def test_merge_again_after_applying_is_quiet(case):
    """No echo: once the writes are applied, merging again against ``new_base`` moves nothing."""
    spec, base, host, qbo, host_at, qbo_at, critical = case
    first = merge(spec, base, host, qbo, host_updated_at=host_at, qbo_updated_at=qbo_at, critical_fields=critical)
    host_after = {**host, **first.to_host}
    qbo_after = {**qbo, **first.to_qbo}
    second = merge(
        spec, first.new_base, host_after, qbo_after, host_updated_at=host_at, qbo_updated_at=qbo_at,
        critical_fields=critical,
    )
    assert second.to_host == {} and second.to_qbo == {}
    assert {c.field for c in second.conflicts} == {c.field for c in first.held}
