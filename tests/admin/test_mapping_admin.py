"""The links' admin page: read-only, with the last QuickBooks version pretty-printed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from qbo_sync.models import EntityMapping
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_link_shows_its_last_quickbooks_version(org, admin_client, run_queue) -> None:
    customer = CustomerFactory(organization=org, display_name="Payload Pines")
    run_queue()
    mapping = EntityMapping.objects.get(entity_type="Customer", object_id=str(customer.pk))
    listing = admin_client.get(reverse("admin:qbo_sync_entitymapping_changelist"))
    assert listing.status_code == 200 and mapping.qbo_id in listing.content.decode()
    page = admin_client.get(reverse("admin:qbo_sync_entitymapping_change", args=[mapping.pk])).content.decode()
    assert "Last QuickBooks version" in page
    assert "<pre>" in page and "&quot;DisplayName&quot;: &quot;Payload Pines&quot;" in page
    assert 'name="qbo_payload"' not in page  # read-only: shown, never edited
    assert admin_client.post(reverse("admin:qbo_sync_entitymapping_change", args=[mapping.pk]),
                             {"state": "failed"}).status_code == 403
