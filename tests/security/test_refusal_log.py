"""Finding 6 (issue 12): refused webhooks are counted per minute, not stored one row each.

200 posts with a bad signature used to add 200 log rows in under a second; now they add one counter row (per
reason and minute) whose count says 200, and the log gets one line for the first of them.
"""

from __future__ import annotations

import json
import logging

import pytest
import time_machine
from django.test import Client

from qbo_sync.models import RefusalCount, SyncLog, WebhookEvent

URL = "/qbo/webhooks/"
BODY = json.dumps({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [
    {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-01-01T00:00:00Z"}]}}]}).encode()


def table_rows() -> int:
    return SyncLog.objects.count() + RefusalCount.objects.count() + WebhookEvent.objects.count()


@pytest.fixture
def verifier(db, settings):
    settings.QBO_SYNC = {**settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": "verifier-token"}


def test_200_bad_signatures_add_one_row_that_counts_them(verifier, caplog):
    client = Client()
    caplog.set_level(logging.WARNING, logger="qbo_sync")
    with time_machine.travel("2026-03-01 10:00:05+00:00", tick=False):
        for _ in range(200):
            assert client.post(URL, BODY, content_type="application/json",
                               HTTP_INTUIT_SIGNATURE="bm90IHRoZSBzaWduYXR1cmU=").status_code == 401
    assert table_rows() == 1
    refusal = RefusalCount.objects.get()
    assert (refusal.endpoint, refusal.reason, refusal.count) == ("webhooks", "signature", 200)
    assert refusal.last_address == "127.0.0.1" and "does not match" in refusal.last_message
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_refusals_are_counted_per_reason_and_minute(verifier):
    client = Client()
    with time_machine.travel("2026-03-01 10:00:00+00:00", tick=False) as clock:
        for minute in range(3):
            for _ in range(20):
                client.post(URL, BODY, content_type="application/json")  # no signature
                client.post(URL, b"{", content_type="application/json", CONTENT_LENGTH="abc")
                client.post(URL, b"x" * 10, content_type="application/json", CONTENT_LENGTH="99999999999")
            clock.shift(60)
    assert table_rows() == 9  # 3 reasons x 3 minutes, whatever the number of posts
    assert sorted(set(RefusalCount.objects.values_list("reason", "count"))) == [
        ("bad_length", 20), ("signature", 20), ("too_large", 20)]


def test_the_admin_lists_refusals_to_superusers_only(verifier):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    Client().post(URL, BODY, content_type="application/json")
    root, staff = Client(), Client()
    root.force_login(UserFactory(username="root", is_superuser=True))
    member = UserFactory(username="staff")
    member.user_permissions.add(*Permission.objects.filter(content_type__app_label="qbo_sync"))
    staff.force_login(member)
    page = root.get("/admin/qbo_sync/refusalcount/")
    assert page.status_code == 200 and "signature" in page.content.decode()
    assert staff.get("/admin/qbo_sync/refusalcount/").status_code == 403
    assert root.post("/admin/qbo_sync/refusalcount/add/", {}).status_code == 403
