"""One definition of "the same record" (the natural key in each entity's mapping module): push, pull and reconcile
recognise a host row and a QuickBooks record as the same on the same inputs, whatever the spacing or case on either
side. Before, reconcile compared names only trimmed and case-folded, push asked QuickBooks for the name exactly as
typed, and pull also collapsed inner whitespace, so the three disagreed about "Amy  BIRD" and "amy bird"."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchly.models import Customer
from qbo_sync.adapters import get_adapter
from qbo_sync.mapping import customers
from qbo_sync.mapping.base import fold_text
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.context import SyncContext
from qbo_sync.services.push import find_by_natural_key, natural_key_of
from qbo_sync.services.queue import start_pull
from qbo_sync.services.reconcile import reconcile
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

_serial = itertools.count(1)
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=7)


@st.composite
def spelled(draw: st.DrawFn, words: list[str], edges: bool = True) -> str:
    """``words`` written with odd case and spacing: each word lower, upper or title case, one to three spaces
    between words, and (``edges``) up to two spaces before and after."""
    cased = [draw(st.sampled_from([w.lower(), w.upper(), w.title()])) for w in words]
    gaps = [" " * draw(st.integers(1, 3)) for _ in cased[1:]]
    body = cased[0] + "".join(gap + word for gap, word in zip(gaps, cased[1:], strict=True))
    if not edges:
        return body
    return " " * draw(st.integers(0, 2)) + body + " " * draw(st.integers(0, 2))


@st.composite
def name_pairs(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(host DisplayName, QuickBooks DisplayName, whether they are the same customer)."""
    words = [*draw(st.lists(WORD, min_size=1, max_size=3)), f"n{next(_serial)}"]  # unique across examples
    same = draw(st.booleans())
    qbo_words = words if same else [*words, draw(WORD)]
    return draw(spelled(words)), draw(spelled(qbo_words, edges=False)), same


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pair=name_pairs())
def test_push_pull_and_reconcile_agree_on_the_same_record(org, accountant, run_queue, pair) -> None:
    host_name, qbo_name, same = pair
    remote = accountant.create("Customer", {"DisplayName": qbo_name}, request_id=f"nk-{next(_serial)}")
    customer = CustomerFactory(organization=org, display_name=host_name, email="")
    QueueItem.objects.filter(object_id=str(customer.pk)).delete()  # not pushed: each side is judged as it stands
    values = get_adapter("Customer").to_values(customer)

    # The definition itself, on both sides' canonical values.
    keys = customers.SPEC.natural_key_values
    assert (keys(values)["display_name"] == keys(customers.from_qbo(remote))["display_name"]) is same

    # Reconcile: an unlinked twin (the repair links it), or a host row not in QuickBooks.
    drift = {d.object_id: d for d in reconcile(org.pk).drift if d.entity == "Customer"}[str(customer.pk)]
    assert (drift.kind, drift.qbo_id) == (("unlinked", str(remote["Id"])) if same else ("not_in_qbo", ""))

    # Push: the look-up it makes before a create (and on QBO's duplicate-name refusal) finds that record.
    ctx = SyncContext.for_organization(org.pk)
    try:
        found = find_by_natural_key(ctx, "Customer", [values]).get(natural_key_of("Customer", values))
    finally:
        ctx.client.close()
    assert (found is not None and str(found["Id"]) == str(remote["Id"])) is same

    # Pull: links the record to the host row instead of creating a second host customer.
    start_pull(org.pk, "Customer", full=True)
    run_queue()
    mapping = EntityMapping.objects.filter(entity_type="Customer", object_id=str(customer.pk)).first()
    assert (mapping is not None and mapping.qbo_id == str(remote["Id"])) is same
    twins = [c for c in Customer.objects.filter(organization=org) if fold_text(c.display_name) == fold_text(qbo_name)]
    assert len(twins) == 1
