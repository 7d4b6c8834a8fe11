"""The "QuickBooks" column on Batchly's lists: each row's sync state, the failure message, a link to the QBO record,
in a number of queries that does not grow with the page."""

from __future__ import annotations

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.status import qbo_url
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/batchly/customer/"


def row_html(html: str, text: str) -> str:
    rows = [r for r in re.split(r"<tr[ >]", html) if text in r]
    assert len(rows) == 1, f"{text!r} in {len(rows)} rows"
    return rows[0]


def test_each_row_shows_its_state_message_and_link(org, admin_client, run_queue, make_conflict) -> None:
    synced = CustomerFactory(organization=org, display_name="Synced Co")
    run_queue()
    mapping = EntityMapping.objects.get(object_id=str(synced.pk), entity_type="Customer")
    pending = CustomerFactory(organization=org, display_name="Pending Co")  # its real-time push is queued
    failed = Customer.objects.bulk_create([Customer(organization=org, display_name="Failed Co")])[0]
    QueueItem.objects.create(organization=org, entity_type="Customer", object_id=str(failed.pk), operation="push",
                             status="failed", last_error="Duplicate Name Exists Error <6240>",
                             next_attempt_at=timezone.now())
    conflicted = make_conflict(org)
    Customer.objects.filter(pk=conflicted.mapping.object_id).update(display_name="Conflict Co")
    Customer.objects.bulk_create([Customer(organization=org, display_name="Never Sent Co")])
    assert QueueItem.objects.filter(object_id=str(pending.pk), status="pending").exists()

    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<th" in html and ">QuickBooks<" in html  # the column's header
    synced_row = row_html(html, "Synced Co")
    assert "qbo-state-synced" in synced_row and f"QBO #{mapping.qbo_id}" in synced_row
    assert qbo_url("Customer", mapping.qbo_id) == "" and "qbo-link" not in synced_row  # local mode: no dead link
    assert "qbo-state-pending" in row_html(html, "Pending Co")
    failed_row = row_html(html, "Failed Co")
    assert "qbo-state-failed" in failed_row and "Duplicate Name Exists Error &lt;6240&gt;" in failed_row
    conflict_row = row_html(html, "Conflict Co")
    assert "qbo-state-conflict" in conflict_row and f"QBO #{conflicted.mapping.qbo_id}" in conflict_row
    never = row_html(html, "Never Sent Co")
    assert "qbo-state-not_synced" in never and "QBO #" not in never


def page_queries(client) -> int:
    with CaptureQueriesContext(db_connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured.captured_queries)


def test_the_column_costs_the_same_queries_for_3_or_30_rows(org, admin_client) -> None:
    ct = ContentType.objects.get_for_model(Customer)

    def add(n: int) -> None:
        start = Customer.objects.count()
        rows = Customer.objects.bulk_create([Customer(organization=org, display_name=f"Row {start + i}")
                                             for i in range(n)])
        EntityMapping.objects.bulk_create([
            EntityMapping(organization=org, entity_type="Customer", content_type=ct, object_id=str(c.pk),
                          realm_id=org.qbo_connection.realm_id, qbo_id=f"9{c.pk}", state="synced")
            for c in rows[::2]])
        QueueItem.objects.bulk_create([
            QueueItem(organization=org, entity_type="Customer", object_id=str(c.pk), operation="push",
                      status="failed", last_error="boom", next_attempt_at=timezone.now()) for c in rows[1::4]])

    add(3)
    few = page_queries(admin_client)
    add(27)
    assert page_queries(admin_client) == few


def test_admins_that_opt_out_have_no_column(org, admin_client, monkeypatch) -> None:
    from batchly.admin import CustomerAdmin

    CustomerFactory(organization=org)
    monkeypatch.setattr(CustomerAdmin, "qbo_state_column", False)
    html = admin_client.get(reverse("admin:batchly_customer_changelist")).content.decode()
    assert "qbo-state-" not in html


def test_open_in_quickbooks_links_only_where_quickbooks_has_pages(settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "local"}
    assert qbo_url("Invoice", "130") == ""
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "sandbox"}
    assert qbo_url("Invoice", "130") == "https://app.sandbox.qbo.intuit.com/app/invoice?txnId=130"
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "production"}
    assert qbo_url("Customer", "7") == "https://app.qbo.intuit.com/app/customerdetail?nameId=7"
