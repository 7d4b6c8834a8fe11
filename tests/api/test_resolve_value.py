"""Resolving a conflict with a typed value validates it through the host field first (issue 12, finding 4).

The same bad values on every surface (service, API, admin form; the CLI in tests/cli/test_status_conflicts.py):
each refused with the host field's own message, and nothing written anywhere (host row, conflict, mapping, queue).
Runs on SQLite and, with DATABASE_URL set, on PostgreSQL (which on its own caught only the length and the NUL byte).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from batchly.models import Customer
from qbo_sync.models import Conflict, EntityMapping, QueueItem
from qbo_sync.services.conflicts import QboValueError, resolve_conflict

pytestmark = pytest.mark.django_db

INVALID_EMAIL = "Enter a valid email address."
LONG = "a" * 100_000
BAD_VALUES = [
    pytest.param("not-an-email", [INVALID_EMAIL], id="not-an-email"),
    pytest.param(12, ["Enter text, not a number."], id="number"),
    pytest.param(True, ["Enter text, not true/false."], id="boolean"),
    pytest.param("nul\x00@example.com", ["Null characters are not allowed."], id="nul-byte"),
    pytest.param(LONG, [INVALID_EMAIL, "Ensure this value has at most 254 characters (it has 100000)."],
                 id="100000-chars"),
]


def state(conflict: Conflict) -> tuple:
    """Everything a resolve could write: the host row, the conflict, the mapping, the queue."""
    conflict = Conflict.objects.get(pk=conflict.pk)
    mapping = EntityMapping.objects.get(pk=conflict.mapping_id)
    return (Customer.objects.get(pk=mapping.object_id).email, conflict.state, conflict.resolved_value,
            conflict.winner, mapping.state, mapping.snapshot, QueueItem.objects.count())


@pytest.mark.parametrize(("value", "messages"), BAD_VALUES)
def test_the_service_refuses_and_writes_nothing(org_a, make_conflict, value, messages) -> None:
    conflict = make_conflict(org_a)
    QueueItem.objects.all().delete()
    before = state(conflict)
    with pytest.raises(QboValueError) as caught:
        resolve_conflict(conflict, "value", value=value)
    assert caught.value.messages == messages and caught.value.field == "value"
    assert state(conflict) == before


@pytest.mark.parametrize(("value", "messages"), BAD_VALUES)
def test_the_api_answers_400_with_the_field_message(api, org_a, make_conflict, value, messages) -> None:
    conflict = make_conflict(org_a)
    QueueItem.objects.all().delete()
    before = state(conflict)
    response = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "value", "value": value},
                        format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {"value": messages}
    assert state(conflict) == before


def test_a_valid_value_is_still_kept(api, org_a, make_conflict) -> None:
    conflict = make_conflict(org_a)
    response = api.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "value", "value": "ok@example.com"},
                        format="json")
    assert response.status_code == 200 and response.json()["resolved_value"] == "ok@example.com"
    assert Customer.objects.get(pk=conflict.mapping.object_id).email == "ok@example.com"


@pytest.mark.parametrize(("value", "messages"), [p for p in BAD_VALUES if isinstance(p.values[0], str)])
def test_the_admin_form_shows_the_field_message(org_a, make_conflict, value, messages) -> None:
    conflict = make_conflict(org_a)
    QueueItem.objects.all().delete()
    before = state(conflict)
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = client.post(reverse("admin:qbo_sync_conflict_resolve", args=[conflict.pk]),
                       {"keep": "value", "value": value})
    assert page.status_code == 200
    assert page.context["form"].errors == {"value": messages}
    assert INVALID_EMAIL in page.content.decode() or "Null characters" in page.content.decode()
    assert state(conflict) == before
