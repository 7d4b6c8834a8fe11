"""Batchly's customers, items and invoices in the admin: "Sync selected to QuickBooks" and "Pull selected from
QuickBooks" (a preview per row, then one job per organization), and who may see and run them."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.admin.actions import job_url
from qbo_sync.models import EntityMapping, QueueItem, SyncJob
from tests.factories import CustomerFactory, InvoiceFactory, ItemFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def changelist(model: str) -> str:
    return reverse(f"admin:batchly_{model}_changelist")


def run_action(client, model: str, action: str, pks, *, confirm: bool = False):
    """Choose ``action`` for the rows ``pks`` on the changelist (``confirm``: the confirmation page's "Yes")."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    data.update({"post": "yes"} if confirm else {"index": "0"})
    return client.post(changelist(model), data)


def preview_actions(response) -> dict[str, tuple[str, str]]:
    return {row.object_id: (row.action, row.reason) for section in response.context["sections"]
            for row in section["rows"]}


def test_push_confirmation_previews_each_row_then_starts_one_job(org, admin_client, run_queue) -> None:
    synced, changed = CustomerFactory(organization=org), CustomerFactory(organization=org)
    run_queue()
    Customer.objects.filter(pk=changed.pk).update(phone="555-0100", updated_at=timezone.now())
    new = CustomerFactory(organization=org, display_name="Brand New Ltd")
    QueueItem.objects.all().delete()

    page = run_action(admin_client, "customer", "qbo_push_selected", [synced.pk, changed.pk, new.pk])
    assert page.status_code == 200
    assert page.templates[0].name == "qbo_sync/admin/confirm_job.html"
    rows = preview_actions(page)
    assert rows[str(synced.pk)] == ("skip", "already in step with QuickBooks")
    assert rows[str(changed.pk)][0] == "update" and "phone" in rows[str(changed.pk)][1]
    assert rows[str(new.pk)] == ("create", "")
    html = page.content.decode()
    assert "Brand New Ltd" in html and "already in step with QuickBooks" in html and "Yes, sync to QuickBooks" in html
    assert not SyncJob.objects.exists()  # a preview starts nothing

    done = run_action(admin_client, "customer", "qbo_push_selected", [synced.pk, changed.pk, new.pk], confirm=True)
    job = SyncJob.objects.get()
    assert done.status_code == 302 and done["Location"] == job_url(job)
    assert job.kind == "push" and job.entity_type == "Customer" and job.organization_id == org.pk
    assert job.started_by.username == "admin"
    assert set(job.items.values_list("object_id", flat=True)) == {str(changed.pk), str(new.pk)}  # skips left out
    run_queue()
    job.refresh_from_db()
    assert job.state == "completed"
    assert EntityMapping.objects.filter(object_id=str(new.pk), entity_type="Customer", qbo_id__isnull=False).exists()


def test_job_link_is_the_progress_page_when_mounted_else_the_admin_page(org, settings) -> None:
    job = SyncJob.objects.create(organization=org, kind="push", entity_type="Customer")
    try:
        expected = reverse("qbo_sync:job-progress", args=[job.pk])
    except Exception:  # the progress page is not mounted in this tree
        expected = reverse("admin:qbo_sync_syncjob_change", args=[job.pk])
    assert job_url(job) == expected
    settings.ROOT_URLCONF = "tests.admin.urls_without_qbo"
    assert job_url(job) == f"/admin/qbo_sync/syncjob/{job.pk}/change/"


def test_one_job_per_organization_and_unconnected_ones_are_left_out(org, other_org, admin_client) -> None:
    ours, theirs = CustomerFactory(organization=org), CustomerFactory(organization=other_org)
    lonely = CustomerFactory(organization=OrganizationFactory(name="Never Connected"))
    QueueItem.objects.all().delete()
    page = run_action(admin_client, "customer", "qbo_push_selected", [ours.pk, theirs.pk, lonely.pk])
    sections = {str(s["organization"]): s for s in page.context["sections"]}
    assert set(sections) == {str(org), "Other Org", "Never Connected"}
    assert "Not connected to QuickBooks" in sections["Never Connected"]["error"]

    done = run_action(admin_client, "customer", "qbo_push_selected", [ours.pk, theirs.pk, lonely.pk], confirm=True)
    jobs = list(SyncJob.objects.order_by("pk"))
    assert [j.organization_id for j in jobs] == [org.pk, other_org.pk]
    assert all(j.total == 1 for j in jobs)
    assert done.status_code == 302
    assert done["Location"] == f"{reverse('admin:qbo_sync_syncjob_changelist')}?id__in={jobs[0].pk},{jobs[1].pk}"
    listed = admin_client.get(done["Location"])
    assert listed.status_code == 200 and list(listed.context["cl"].result_list) == jobs[::-1]
    texts = [str(m) for m in get_messages(done.wsgi_request)]
    assert any("Never Connected: Not connected" in t for t in texts)


def test_nothing_to_send_goes_back_to_the_list(admin_client) -> None:
    lonely = CustomerFactory(organization=OrganizationFactory())
    done = run_action(admin_client, "customer", "qbo_push_selected", [lonely.pk], confirm=True)
    assert done.status_code == 302 and done["Location"] == changelist("customer")
    assert not SyncJob.objects.exists()


def test_invoice_preview_says_create_refused_or_skip_with_the_reason(org, admin_client) -> None:
    good = InvoiceFactory(organization=org)
    empty = InvoiceFactory(organization=org, lines=0)
    voided = InvoiceFactory(organization=org)
    voided.void()
    QueueItem.objects.all().delete()
    page = run_action(admin_client, "invoice", "qbo_push_selected", [good.pk, empty.pk, voided.pk])
    rows = preview_actions(page)
    assert rows[str(good.pk)] == ("create", "")
    assert rows[str(empty.pk)][0] == "refused" and rows[str(empty.pk)][1].startswith("invalid: ")
    assert rows[str(voided.pk)] == ("skip", "void and never sent")
    done = run_action(admin_client, "invoice", "qbo_push_selected", [good.pk, empty.pk, voided.pk], confirm=True)
    job = SyncJob.objects.get()
    assert done["Location"] == job_url(job)
    assert list(job.items.values_list("object_id", "operation")) == [(str(good.pk), "push")]


def test_pull_selected_refreshes_linked_rows_from_quickbooks(org, admin_client, accountant, run_queue) -> None:
    linked = CustomerFactory(organization=org, display_name="Linked Co")
    run_queue()
    unsent = Customer.objects.bulk_create([Customer(organization=org, display_name="Unsent Co")])[0]
    mapping = EntityMapping.objects.get(object_id=str(linked.pk), entity_type="Customer")
    current = accountant.read("Customer", mapping.qbo_id)
    accountant.update("Customer", {"Id": mapping.qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "PrimaryPhone": {"FreeFormNumber": "555-0199"}}, request_id="acct-admin-pull")

    page = run_action(admin_client, "customer", "qbo_pull_selected", [linked.pk, unsent.pk])
    assert page.status_code == 200
    rows = preview_actions(page)
    assert rows[str(linked.pk)] == ("update", f"refreshed from QuickBooks Customer {mapping.qbo_id}")
    assert rows[str(unsent.pk)] == ("skip", "not in QuickBooks yet: sync it first")
    assert "Yes, pull from QuickBooks" in page.content.decode()

    done = run_action(admin_client, "customer", "qbo_pull_selected", [linked.pk, unsent.pk], confirm=True)
    job = SyncJob.objects.get(kind="pull")
    assert done["Location"] == job_url(job)
    assert job.options == {"full": False, "targeted": True} and job.total == 1
    assert list(job.items.values_list("object_id", "qbo_id", "operation")) == [
        (str(linked.pk), mapping.qbo_id, "pull")]
    run_queue()
    job.refresh_from_db()
    linked.refresh_from_db()
    assert job.state == "completed" and linked.phone == "555-0199"


def test_items_can_be_pulled_but_invoices_cannot(org, admin_client) -> None:
    ItemFactory(organization=org)
    InvoiceFactory(organization=org)
    item_actions = dict(admin_client.get(changelist("item")).context["action_form"].fields["action"].choices)
    invoice_actions = dict(admin_client.get(changelist("invoice")).context["action_form"].fields["action"].choices)
    assert {"qbo_push_selected", "qbo_pull_selected"} <= set(item_actions)
    assert item_actions["qbo_pull_selected"] == "Pull selected from QuickBooks"
    assert "qbo_push_selected" in invoice_actions and "qbo_pull_selected" not in invoice_actions


# --- permissions and organizations --------------------------------------------------------------------------------


def action_choices(client, model: str) -> set[str]:
    response = client.get(changelist(model))
    assert response.status_code == 200
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


def test_staff_without_the_permissions_do_not_see_or_run_the_actions(org, viewer_client, operator_client) -> None:
    customer = CustomerFactory(organization=org)
    assert not {"qbo_push_selected", "qbo_pull_selected"} & action_choices(viewer_client, "customer")
    assert "qbo_push_selected" not in viewer_client.get(changelist("customer")).content.decode()
    refused = run_action(viewer_client, "customer", "qbo_push_selected", [customer.pk], confirm=True)
    assert refused.status_code in (200, 302) and not SyncJob.objects.exists()
    # An operator has both on customers; on invoices (view only there) push but not pull.
    assert {"qbo_push_selected", "qbo_pull_selected"} <= action_choices(operator_client, "customer")
    assert "qbo_pull_selected" not in action_choices(operator_client, "invoice")


def test_operators_see_and_act_on_their_organizations_rows_only(org, other_org, operator_client) -> None:
    ours, theirs = CustomerFactory(organization=org), CustomerFactory(organization=other_org)
    QueueItem.objects.all().delete()
    listed = operator_client.get(changelist("customer"))
    assert list(listed.context["cl"].result_list) == [ours]
    assert operator_client.get(reverse("admin:batchly_customer_change", args=[theirs.pk])).status_code == 302
    page = run_action(operator_client, "customer", "qbo_push_selected", [theirs.pk])
    assert page.status_code == 302 and not SyncJob.objects.exists()  # nothing of theirs is even selectable
    done = run_action(operator_client, "customer", "qbo_push_selected", [ours.pk, theirs.pk], confirm=True)
    job = SyncJob.objects.get()
    assert done["Location"] == job_url(job)
    assert job.organization_id == org.pk and list(job.items.values_list("object_id", flat=True)) == [str(ours.pk)]


def test_rows_outside_the_resolvers_organizations_are_refused(org, other_org, operator, settings) -> None:
    """A host admin that shows more than the resolver allows cannot be used to act for another organization."""
    from django.contrib import admin as django_admin
    from django.core.exceptions import PermissionDenied
    from django.test import RequestFactory

    from batchly.admin import CustomerAdmin

    theirs = CustomerFactory(organization=other_org)
    request = RequestFactory().post(changelist("customer"))
    request.user = operator
    model_admin = CustomerAdmin(Customer, django_admin.site)
    with pytest.raises(PermissionDenied):
        model_admin.qbo_push_selected(request, Customer.objects.filter(pk=theirs.pk))
    assert not SyncJob.objects.exists()
