"""A held critical-field conflict is never overwritten (issue 11, defect 1), against the sandbox.

The story: ``CRITICAL_FIELDS = {"Customer": ["email"]}``; the customer's email is edited in QuickBooks (the
accountant) and in the host, a pull opens a conflict and QuickBooks keeps the accountant's value. While that conflict
is open the email is held: no push sends it, no pull writes it, every preview says "held", reconcile counts it as
covered by the conflict; resolving it (either side, or a typed value) puts the chosen value on both sides.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.conflicts import resolve_conflict
from qbo_sync.services.jobs import preview_push
from qbo_sync.services.queue import start_pull
from qbo_sync.services.reconcile import reconcile
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

BASE, HOST, ACCOUNTANT = "base@example.com", "host@example.com", "accountant@example.com"


def mapping_of(customer) -> EntityMapping:
    return EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk))


def qbo_email(accountant, customer) -> str:
    return accountant.read("Customer", mapping_of(customer).qbo_id)["PrimaryEmailAddr"]["Address"]


def accountant_edits(accountant, qbo_id, **fields):
    current = accountant.read("Customer", qbo_id)
    payload = {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields}
    return accountant.update("Customer", payload, request_id=f"acct-{qbo_id}-{current['SyncToken']}", sparse=True)


def pull(org, run_queue) -> None:
    start_pull(org.pk, "Customer")
    run_queue()


@pytest.fixture
def held(org, accountant, run_queue, settings):
    """A customer whose email conflict is open: the host says HOST, QuickBooks says ACCOUNTANT."""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CRITICAL_FIELDS": {"Customer": ["email"]}}
    customer = CustomerFactory(organization=org, email=BASE)
    run_queue()
    Customer.objects.filter(pk=customer.pk).update(email=HOST, updated_at=timezone.now())
    accountant_edits(accountant, mapping_of(customer).qbo_id, PrimaryEmailAddr={"Address": ACCOUNTANT})
    pull(org, run_queue)
    run_queue()
    conflict = Conflict.objects.get(field="email", state="open")
    assert (conflict.host_value, conflict.qbo_value) == (HOST, ACCOUNTANT)
    assert qbo_email(accountant, customer) == ACCOUNTANT
    customer.refresh_from_db()
    return customer


def test_a_host_edit_of_the_held_field_is_not_sent_but_the_conflict_shows_it(org, accountant, run_queue,
                                                                              held) -> None:
    """Found by the model soak (seed 2347090212): the conflict kept showing the host's old value."""
    held.email = "again@example.com"
    held.save()
    run_queue()

    assert qbo_email(accountant, held) == ACCOUNTANT  # still held: nothing sent
    conflict = Conflict.objects.get(field="email")
    assert conflict.state == "open" and (conflict.host_value, conflict.qbo_value) == ("again@example.com", ACCOUNTANT)
    resolve_conflict(conflict, "host")
    run_queue()
    assert qbo_email(accountant, held) == "again@example.com"  # "keep the app's value" wrote the value it has now


def test_both_sides_agreeing_on_a_held_field_show_in_its_open_conflict(org, accountant, run_queue, held) -> None:
    """Found by the model soak (seed 2382827903): a new QuickBooks version that agrees with the host raised no
    conflict, so the open one kept QuickBooks' old value."""
    held.email = "agreed@example.com"
    held.save()
    accountant_edits(accountant, mapping_of(held).qbo_id, PrimaryEmailAddr={"Address": "agreed@example.com"})
    run_queue()
    pull(org, run_queue)

    conflict = Conflict.objects.get(field="email")
    assert conflict.state == "open"  # a person still settles it; it now shows what both sides hold
    assert (conflict.host_value, conflict.qbo_value) == ("agreed@example.com", "agreed@example.com")


def test_a_push_of_another_field_never_sends_the_held_one(org, accountant, run_queue, held) -> None:
    held.phone = "(555) 303-0303"
    held.save()
    run_queue()

    remote = accountant.read("Customer", mapping_of(held).qbo_id)
    assert remote["PrimaryPhone"]["FreeFormNumber"] == "(555) 303-0303"  # the phone went
    assert remote["PrimaryEmailAddr"]["Address"] == ACCOUNTANT  # the accountant's email stayed
    conflict = Conflict.objects.get(field="email")
    assert conflict.state == "open" and (conflict.host_value, conflict.qbo_value) == (HOST, ACCOUNTANT)
    assert Customer.objects.get(pk=held.pk).email == HOST
    from qbo_sync.services.held import held_fields

    assert held_fields(mapping_of(held)) == {"email": ACCOUNTANT}


def test_a_push_with_only_the_held_field_changed_sends_nothing(org, accountant, run_queue, held) -> None:
    from qbo_sync.services.context import SyncContext
    from qbo_sync.services.push import PushRequest, push_names

    token = accountant.read("Customer", mapping_of(held).qbo_id)["SyncToken"]
    request = PushRequest("Customer", str(held.pk), QueueItem.Operation.PUSH, "held-only")
    ctx = SyncContext.for_organization(org.pk)
    try:
        outcome = push_names(ctx, "Customer", [request])[request]
    finally:
        ctx.client.close()
    conflict = Conflict.objects.get(field="email")
    assert (outcome.result, outcome.message) == ("completed", f"nothing to send: email held by open conflict "
                                                              f"#{conflict.pk}")
    assert accountant.read("Customer", mapping_of(held).qbo_id)["SyncToken"] == token


def test_a_pull_never_writes_the_held_field_and_keeps_the_conflict_current(org, accountant, run_queue,
                                                                          held) -> None:
    # The host goes back to the old value (a one-sided change for the merge) and the accountant edits again.
    Customer.objects.filter(pk=held.pk).update(email=BASE, updated_at=timezone.now())
    accountant_edits(accountant, mapping_of(held).qbo_id, PrimaryEmailAddr={"Address": "second@example.com"})
    pull(org, run_queue)
    run_queue()

    assert Customer.objects.get(pk=held.pk).email == BASE  # not overwritten while the conflict is open
    assert qbo_email(accountant, held) == "second@example.com"
    conflict = Conflict.objects.get(field="email")
    assert conflict.state == "open" and (conflict.host_value, conflict.qbo_value) == (BASE, "second@example.com")
    assert not QueueItem.objects.filter(status="pending").exists()


def test_previews_say_held(org, accountant, run_queue, held, admin_client) -> None:
    conflict = Conflict.objects.get(field="email")
    [row] = preview_push(org.pk, "Customer", [held.pk])
    assert row.action == "held" and row.reason == f"email held by open conflict #{conflict.pk}"

    out = io.StringIO()
    call_command("qbo_sync", "push", "Customer", "--ids", str(held.pk), "--org", org.slug, "--dry-run", stdout=out)
    assert f"{org.slug}: dry run, 1 row(s): 1 held" in out.getvalue()
    assert f"(email held by open conflict #{conflict.pk})" in out.getvalue()

    page = admin_client.post(reverse("admin:batchly_customer_changelist"),
                             {"action": "qbo_push_selected", "_selected_action": [str(held.pk)], "index": "0"})
    assert page.status_code == 200
    assert [(r.action, r.reason) for s in page.context["sections"] for r in s["rows"]] == [
        ("held", f"email held by open conflict #{conflict.pk}")]
    assert "already in step" not in page.content.decode()

    # With another change waiting, the row is an update of that field; the held one is named.
    Customer.objects.filter(pk=held.pk).update(phone="1", updated_at=timezone.now())
    [row] = preview_push(org.pk, "Customer", [held.pk])
    assert row.action == "update" and row.reason == f"changed: phone; email held by open conflict #{conflict.pk}"


def test_reconcile_counts_a_held_field_as_covered_by_its_conflict(org, accountant, run_queue, held) -> None:
    report = reconcile(org.pk)
    conflict = Conflict.objects.get(field="email")
    assert report.books_match, report.lines()
    assert report.held == [f"Customer {held.pk} email: held by open conflict #{conflict.pk} "
                           f"(host {HOST!r} / QBO {ACCOUNTANT!r})"]
    out = io.StringIO()
    call_command("qbo_sync", "reconcile", "--org", org.slug, stdout=out)
    assert "books match" in out.getvalue() and f"held by open conflict #{conflict.pk}" in out.getvalue()


@pytest.mark.parametrize(("keep", "value", "expected"), [("host", None, HOST), ("qbo", None, ACCOUNTANT),
                                                          ("value", "typed@example.com", "typed@example.com")])
def test_resolving_writes_the_chosen_value_to_both_sides(org, accountant, run_queue, held, keep, value,
                                                         expected) -> None:
    # The symptom: a push of another field first (today it sent the host's email while the conflict was open).
    held.phone = "(555) 404-0404"
    held.save()
    run_queue()

    resolve_conflict(Conflict.objects.get(field="email"), keep, value=value)
    run_queue()

    assert Customer.objects.get(pk=held.pk).email == expected
    assert qbo_email(accountant, held) == expected
    assert mapping_of(held).snapshot["email"] == expected
    assert mapping_of(held).state == "synced"
    # Nothing echoes: a pull and a drain later, no new conflict, no push, no QuickBooks write.
    token = accountant.read("Customer", mapping_of(held).qbo_id)["SyncToken"]
    pull(org, run_queue)
    run_queue()
    assert accountant.read("Customer", mapping_of(held).qbo_id)["SyncToken"] == token
    assert not Conflict.objects.filter(state="open").exists()
    assert not QueueItem.objects.filter(status="pending").exists()
    assert reconcile(org.pk).books_match


def test_resolving_keeps_quickbooks_latest_value(org, accountant, run_queue, held) -> None:
    """The accountant edited again while the conflict was open: "keep QuickBooks" keeps that newest value."""
    accountant_edits(accountant, mapping_of(held).qbo_id, PrimaryEmailAddr={"Address": "newest@example.com"})
    pull(org, run_queue)

    resolve_conflict(Conflict.objects.get(field="email"), "qbo")
    run_queue()

    assert Customer.objects.get(pk=held.pk).email == "newest@example.com"
    assert qbo_email(accountant, held) == "newest@example.com"
