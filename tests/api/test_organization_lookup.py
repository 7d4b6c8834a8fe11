"""One lookup field names an organization on every surface: ``QBO_SYNC["ORGANIZATION_LOOKUP_FIELD"]``.

A host whose tenant model has no ``slug`` uses the default, ``pk``; the CLI used to demand a slug (a raw
FieldError) and the API guessed between fields."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from qbo_sync.organizations import find_organization, organization_model, organization_ref
from tests.api.conftest import client_for
from tests.factories import UserFactory

JOBS = "/api/qbo/jobs/"


def lookup(field: str):
    return override_settings(QBO_SYNC={**settings.QBO_SYNC, "ORGANIZATION_LOOKUP_FIELD": field})


def status(*args: str) -> str:
    out = io.StringIO()
    call_command("qbo_sync", "status", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_default_lookup_field_is_the_primary_key(org_a) -> None:
    with override_settings(QBO_SYNC={}):
        assert organization_ref(org_a) == str(org_a.pk)
        everyone = organization_model()._default_manager.all()
        assert find_organization(everyone, str(org_a.pk)) == org_a
        for bad in (org_a.slug, "", "abc", "1" * 40, f"{org_a.pk}\x00", "-0.5"):
            assert find_organization(everyone, bad) is None, bad


def test_cli_names_an_organization_by_the_lookup_field(org_a, make_push_job) -> None:
    make_push_job(org_a, 1)
    with lookup("pk"):
        assert org_a.name in status("--org", str(org_a.pk))
        with pytest.raises(CommandError, match=r"^No organization with pk 'org-a'\.$"):
            status("--org", org_a.slug)
        with pytest.raises(CommandError, match="No organization with pk"):
            status("--org", "9" * 30)
    with lookup("slug"):
        assert org_a.name in status("--org", org_a.slug)


def test_a_lookup_field_the_model_lacks_is_one_clean_line(org_a) -> None:
    with lookup("handle"), pytest.raises(CommandError, match=r"ORGANIZATION_LOOKUP_FIELD.*no such field"):
        status("--org", "x")
    # A reverse relation is no field of the row either (it was an AttributeError; found by mypy).
    with lookup("memberships"), pytest.raises(CommandError, match=r"ORGANIZATION_LOOKUP_FIELD.*no such field"):
        status("--org", "x")


def test_api_and_pages_use_the_same_field(org_a, user_a) -> None:
    client = client_for(user_a)
    with lookup("pk"):
        assert client.get(JOBS + f"?org={org_a.pk}").status_code == 200
        assert client.get(JOBS + f"?org={org_a.slug}").status_code == 404
        assert client.get(JOBS, HTTP_X_ORGANIZATION="9" * 40).status_code == 404
        answer = client.get("/api/qbo/connection/").json()
        assert answer["organization"] == str(org_a.pk)
    with lookup("slug"):
        assert client.get(JOBS + f"?org={org_a.pk}").status_code == 404
        assert client.get("/api/qbo/connection/").json()["organization"] == org_a.slug
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    with lookup("pk"):
        assert client.get(f"/qbo/dashboard/?org={org_a.pk}").status_code == 200
        assert client.get(f"/qbo/dashboard/?org={org_a.slug}").status_code == 404
