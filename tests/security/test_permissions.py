"""Who may do what (qbo_sync.permissions): one rule, the same answer through the API, the pages, the admin and the
command line. Batchly maps the actions to membership roles (viewer / operator / accountant / owner); without a host
checker the Django model permissions decide. Issue 12, finding 3."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from qbo_sync.admin.tenancy import visible_organization_ids
from qbo_sync.api.permissions import viewable_organizations
from qbo_sync.models import Conflict, QboConnection, SyncJob
from qbo_sync.permissions import (
    Action,
    Actor,
    QboPermissionDenied,
    allowed,
    require,
    visible_organizations,
)
from qbo_sync.services import operations
from tests.api.conftest import client_for as api_for
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(org, role: str, **user_fields):
    return MembershipFactory(organization=org, role=role, user=UserFactory(**user_fields)).user


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grant(user, *perms: str):
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user)._default_manager.get(pk=user.pk)  # a fresh permission cache


# --- the API ------------------------------------------------------------------------------------------------------


def test_a_viewer_cannot_start_a_sync_cancel_a_job_or_resolve_a_conflict(org_a, make_push_job, make_conflict):
    viewer = api_for(member(org_a, "viewer", is_staff=False))
    job = make_push_job(org_a, 2)
    conflict = make_conflict(org_a)
    jobs_before = SyncJob.objects.count()

    assert viewer.get(f"/api/qbo/jobs/{job.pk}/").status_code == 200  # viewing is allowed
    assert viewer.get("/api/qbo/conflicts/").json()["count"] == 1
    response = viewer.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json")
    assert response.status_code == 403 and "permission" in response.json()["detail"]
    assert viewer.post(f"/api/qbo/jobs/{job.pk}/cancel/", {}, format="json").status_code == 403
    resolve = viewer.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "value", "value": "x@evil.test"},
                          format="json")
    assert resolve.status_code == 403

    assert SyncJob.objects.count() == jobs_before
    job.refresh_from_db()
    conflict.refresh_from_db()
    assert job.state == "pending" and conflict.state == Conflict.State.OPEN


def test_an_operator_can(org_a, make_push_job, make_conflict):
    operator = api_for(member(org_a, "operator", is_staff=False))
    CustomerFactory(organization=org_a)
    job = make_push_job(org_a, 2)
    conflict = make_conflict(org_a)
    assert operator.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json").status_code == 202
    assert operator.post(f"/api/qbo/jobs/{job.pk}/cancel/", {}, format="json").status_code == 200
    assert operator.post(f"/api/qbo/conflicts/{conflict.pk}/resolve/", {"keep": "qbo"},
                         format="json").status_code == 200


def test_the_role_counts_in_each_organization_separately(org_a, org_b, make_conflict):
    user = member(org_a, "viewer")
    MembershipFactory(organization=org_b, user=user, role="operator")
    theirs, mine = make_conflict(org_a), make_conflict(org_b)
    client = api_for(user)
    assert client.post(f"/api/qbo/conflicts/{theirs.pk}/resolve/", {"keep": "qbo"}, format="json").status_code == 403
    assert client.post(f"/api/qbo/conflicts/{mine.pk}/resolve/", {"keep": "qbo"}, format="json").status_code == 200


def test_without_a_host_checker_the_django_permissions_decide(org_a, make_push_job, make_conflict, settings):
    settings.QBO_SYNC = {**settings.QBO_SYNC, "PERMISSION_CHECKER": None}
    user = member(org_a, "owner", is_staff=False)  # the role means nothing to the default rule
    job = make_push_job(org_a, 1)
    assert api_for(user).get("/api/qbo/jobs/").json()["count"] == 0  # no view permission: nothing seen
    assert api_for(user).post("/api/qbo/sync/", {"entity": "customer", "all": True},
                              format="json").status_code == 403
    user = grant(user, "qbo_sync.view_syncjob")
    assert api_for(user).get("/api/qbo/jobs/").json()["count"] == 1
    assert api_for(user).post(f"/api/qbo/jobs/{job.pk}/cancel/", {}, format="json").status_code == 403
    user = grant(user, "qbo_sync.change_syncjob")
    assert api_for(user).post(f"/api/qbo/jobs/{job.pk}/cancel/", {}, format="json").status_code == 200


# --- the pages ----------------------------------------------------------------------------------------------------


def test_staff_without_permissions_cannot_connect_or_disconnect_through_the_pages(org_a):
    staff = browser(member(org_a, "operator", is_staff=True))
    assert staff.get("/qbo/connect/org-a/").status_code == 403
    assert staff.get("/qbo/disconnect/", {"org": "org-a"}).status_code == 403
    assert staff.post("/qbo/disconnect/", {"org": "org-a"}).status_code == 403
    assert QboConnection.objects.get(organization=org_a).status == QboConnection.Status.CONNECTED


def test_the_owner_may_disconnect_through_the_page(org_a):
    owner = browser(member(org_a, "owner", is_staff=False))
    assert owner.get("/qbo/disconnect/", {"org": "org-a"}).status_code == 200
    assert owner.post("/qbo/disconnect/", {"org": "org-a"}).status_code == 200
    assert QboConnection.objects.get(organization=org_a).status == QboConnection.Status.DISCONNECTED


def test_a_staff_user_granted_the_django_permission_may_manage_the_connection(org_a):
    user = grant(member(org_a, "operator", is_staff=True), "qbo_sync.change_qboconnection")
    assert browser(user).get("/qbo/disconnect/", {"org": "org-a"}).status_code == 200


# --- one rule: tenancy and the special users ----------------------------------------------------------------------


def test_inactive_users_get_nothing_superusers_everything(org_a, org_b, settings):
    inactive_super = UserFactory(is_superuser=True, is_staff=True, is_active=False)
    inactive_owner = member(org_a, "owner", is_active=False)
    for user in (inactive_super, inactive_owner):
        assert not visible_organizations(user).exists()
        assert visible_organization_ids(user) == set()
        assert not viewable_organizations(user).exists()
        assert not any(allowed(user, action, org_a) for action in Action)
    superuser = UserFactory(is_superuser=True, is_staff=True)
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ORGANIZATION_RESOLVER": "tests.security.test_permissions.nobody"}
    # The resolver is not asked about superusers (the API's old copy asked it; the admin's did not).
    assert set(visible_organizations(superuser)) == {org_a, org_b}
    assert visible_organization_ids(superuser) is None
    assert all(allowed(superuser, action, org_b) for action in Action)


def nobody(user):
    return []


def test_an_organization_the_user_cannot_see_is_never_allowed(org_a, org_b):
    owner_of_a = member(org_a, "owner")
    assert allowed(owner_of_a, Action.MANAGE_CONNECTION, org_a)
    assert not any(allowed(owner_of_a, action, org_b) for action in Action)


def test_the_command_line_is_a_system_actor_that_still_goes_through_the_rule(org_a, make_conflict):
    conflict = make_conflict(org_a)
    require(Actor.system("cli"), Action.RESOLVE, org_a)  # allowed
    viewer = Actor(member(org_a, "viewer"), "cli")
    with pytest.raises(QboPermissionDenied):
        operations.resolve_conflict(viewer, conflict, "qbo")
    operations.resolve_conflict(Actor.system("cli"), conflict, "qbo")
    conflict.refresh_from_db()
    assert conflict.state == Conflict.State.RESOLVED


def test_client_address_is_remote_addr_unless_a_proxy_header_is_configured(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6")
    request.user = None
    assert Actor.from_request(request, "api").address == "10.0.0.5"
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CLIENT_ADDRESS_HEADER": "HTTP_X_FORWARDED_FOR"}
    assert Actor.from_request(request, "api").address == "6.6.6.6"
