"""The security matrix (issue 12): users x ways of naming the organization x endpoints and pages.

Every cell asks the one rule (``qbo_sync.permissions.allowed``) what the answer should be, so the matrix follows the
rule wherever it is defined (a host's PERMISSION_CHECKER, Batchly's roles, Django permissions) and checks that each
surface applies it, tenancy first:

- not signed in (or inactive): the API refuses (401/403), a page sends to the login page; nothing changes;
- the organization is not one the user may view: 404, exactly as for one that does not exist; nothing changes;
- the user may view it but not take the action: 403; nothing changes;
- allowed: the request succeeds and its change is made.

The target of every request (a job, a conflict, a customer, the connection) belongs to organization A. Ways of
naming it: the ``org`` query parameter, the ``X-Organization`` header, an object id alone in the path, the
organization in the path (``/qbo/connect/<org>/``) or in the form body (``/qbo/disconnect/``).

The admin's pages (Batchly's and qbo_sync's change pages and lists) show A's rows to A's staff and superusers and to
no one else; the admin's forms are covered by ``test_host_admin.py`` (Batchly) and ``tests/admin/`` (qbo_sync's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.test import Client
from django.utils import timezone

from qbo_sync.models import Conflict, QboConnection, QueueItem, SyncJob
from qbo_sync.organizations import organization_ref
from qbo_sync.permissions import Action, allowed
from tests.api.conftest import connect
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _user(username: str, org=None, role: str | None = None, perms: tuple[str, ...] = (), **fields) -> Any:
    user = UserFactory(username=username, **fields)
    if org is not None:
        MembershipFactory(user=user, organization=org, role=role)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


ALL_QBO_PERMS = ("qbo_sync.view_syncjob", "qbo_sync.add_syncjob", "qbo_sync.change_syncjob",
                 "qbo_sync.change_conflict", "qbo_sync.change_qboconnection")

#: name -> how to make the user, given organizations A and B.
USERS: dict[str, Callable[[Any, Any], Any]] = {
    "anonymous": lambda a, b: None,
    "superuser": lambda a, b: _user("root", is_superuser=True),
    "owner-a": lambda a, b: _user("owner_a", a, "owner"),
    "accountant-a": lambda a, b: _user("accountant_a", a, "accountant", is_staff=False),
    "operator-a": lambda a, b: _user("operator_a", a, "operator"),
    "viewer-a": lambda a, b: _user("viewer_a", a, "viewer", is_staff=False),
    "viewer-a+resolve": lambda a, b: _user("viewer_resolver", a, "viewer", perms=("qbo_sync.change_conflict",)),
    "owner-b": lambda a, b: _user("owner_b", b, "owner"),
    "staff-all-perms-no-membership": lambda a, b: _user("staff_perms", perms=ALL_QBO_PERMS),
    "inactive-owner-a": lambda a, b: _user("inactive_a", a, "owner", is_active=False),
}


@dataclass
class World:
    a: Any
    b: Any

    def job(self) -> SyncJob:
        from qbo_sync.services import jobs

        customers = CustomerFactory.create_batch(2, organization=self.a)
        return jobs.start_push(self.a.pk, "Customer", [c.pk for c in customers])


def _conflict(world: World) -> Conflict:
    """An open conflict on a customer's email in organization A (as a pull leaves it for a critical field)."""
    from django.contrib.contenttypes.models import ContentType

    from batchly.models import Customer
    from qbo_sync.models import EntityMapping

    org = world.a
    customer = CustomerFactory(organization=org, email="host@example.com")
    mapping = EntityMapping.objects.create(
        organization=org, entity_type="Customer", content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customer.pk), realm_id=QboConnection.objects.get(organization=org).realm_id,
        qbo_id=f"Q{customer.pk}", sync_token="0", snapshot={"email": "base@example.com"},
        state=EntityMapping.State.CONFLICT)
    return Conflict.objects.create(organization=org, mapping=mapping, entity_type="Customer", field="email",
                                   base_value="base@example.com", host_value="host@example.com",
                                   qbo_value="qbo@example.com", rule="critical")


def _paused(world: World) -> None:
    QboConnection.objects.filter(organization=world.a).update(paused_at=timezone.now(), pause_reason="month end")


@dataclass
class Endpoint:
    name: str
    action: Action
    surface: str  # api | page
    namings: tuple[str, ...]
    #: (world) -> the target (made fresh for every user)
    target: Callable[[World], Any]
    #: (client, world, target, org_params, headers) -> response
    call: Callable[..., Any]
    #: (world, target, response) -> whether the change was made (None: a read)
    changed: Callable[[World, Any, Any], bool] | None = None


API = "/api/qbo"


def _get(path: str) -> Callable[..., Any]:
    return lambda c, w, t, params, headers: c.get(path.format(t=t), params, **headers)


ENDPOINTS = [
    Endpoint("jobs-list", Action.VIEW, "api", ("query", "header"), World.job, _get(f"{API}/jobs/")),
    Endpoint("job-detail", Action.VIEW, "api", ("id", "query", "header"), World.job,
             _get(API + "/jobs/{t.pk}/")),
    Endpoint("conflicts-list", Action.VIEW, "api", ("query", "header"), _conflict, _get(f"{API}/conflicts/")),
    Endpoint("conflict-detail", Action.VIEW, "api", ("id", "query", "header"), _conflict,
             _get(API + "/conflicts/{t.pk}/")),
    Endpoint("progress", Action.VIEW, "api", ("query", "header"), lambda w: None, _get(f"{API}/progress/")),
    Endpoint("connection", Action.VIEW, "api", ("query", "header"), lambda w: None, _get(f"{API}/connection/")),
    Endpoint("record-status", Action.VIEW, "api", ("query", "header"),
             lambda w: CustomerFactory(organization=w.a), _get(API + "/entities/customer/{t.pk}/status/")),
    Endpoint("audit", Action.VIEW, "api", ("query", "header"), lambda w: None, _get(f"{API}/audit/")),
    Endpoint("sync", Action.START_SYNC, "api", ("query", "header"), lambda w: SyncJob.objects.count(),
             lambda c, w, t, params, headers: c.post(f"{API}/sync/" + _query(params),
                                                     {"entity": "customer", "all": True},
                                                     content_type="application/json", **headers),
             lambda w, t, r: SyncJob.objects.count() > t),
    Endpoint("cancel", Action.OPERATE, "api", ("id", "query", "header"), World.job,
             lambda c, w, t, params, headers: c.post(f"{API}/jobs/{t.pk}/cancel/" + _query(params), {},
                                                     content_type="application/json", **headers),
             lambda w, t, r: t.items.filter(status=QueueItem.Status.CANCELLED).exists()),
    Endpoint("resolve", Action.RESOLVE, "api", ("id", "query", "header"), _conflict,
             lambda c, w, t, params, headers: c.post(f"{API}/conflicts/{t.pk}/resolve/" + _query(params),
                                                     {"keep": "qbo"}, content_type="application/json", **headers),
             lambda w, t, r: Conflict.objects.get(pk=t.pk).state != Conflict.State.OPEN),
    Endpoint("pause", Action.OPERATE, "api", ("query", "header"), lambda w: None,
             lambda c, w, t, params, headers: c.post(f"{API}/connection/pause/" + _query(params),
                                                     {"reason": "month end"}, content_type="application/json",
                                                     **headers),
             lambda w, t, r: QboConnection.objects.get(organization=w.a).paused_at is not None),
    Endpoint("resume", Action.OPERATE, "api", ("query", "header"), _paused,
             lambda c, w, t, params, headers: c.post(f"{API}/connection/resume/" + _query(params), {},
                                                     content_type="application/json", **headers),
             lambda w, t, r: QboConnection.objects.get(organization=w.a).paused_at is None),
    Endpoint("connect-page", Action.MANAGE_CONNECTION, "page", ("path",), lambda w: None,
             lambda c, w, t, params, headers: c.get(f"/qbo/connect/{params['org']}/"),
             lambda w, t, r: r.status_code == 302 and "login" not in r["Location"]),
    Endpoint("disconnect-confirm-page", Action.MANAGE_CONNECTION, "page", ("query",), lambda w: None,
             _get("/qbo/disconnect/")),
    Endpoint("disconnect-page", Action.MANAGE_CONNECTION, "page", ("body",), lambda w: None,
             lambda c, w, t, params, headers: c.post("/qbo/disconnect/", params),
             lambda w, t, r: QboConnection.objects.get(organization=w.a).status
             == QboConnection.Status.DISCONNECTED),
    Endpoint("dashboard-page", Action.VIEW, "page", ("query",), lambda w: None, _get("/qbo/dashboard/")),
    Endpoint("job-progress-page", Action.VIEW, "page", ("id",), World.job, _get("/qbo/jobs/{t.pk}/progress/")),
]


def _query(params: dict) -> str:
    return f"?org={params['org']}" if params else ""


def expected(user: Any, action: Action, org: Any) -> str:
    if user is None or not user.is_active:
        return "unauthenticated"
    if allowed(user, action, org):
        return "allowed"
    if allowed(user, Action.VIEW, org):
        return "forbidden"
    return "not-found"


def outcome(endpoint: Endpoint, response: Any) -> str:
    code = response.status_code
    if code in (401, 403) and endpoint.surface == "api" and not _authenticated(response):
        return "unauthenticated"
    if code == 302 and "login" in response.get("Location", ""):
        return "unauthenticated"
    if code == 403:
        return "forbidden"
    if code == 404:
        return "not-found"
    if code < 400:
        return "allowed"
    return f"status {code}"


def _authenticated(response: Any) -> bool:
    user = getattr(response.wsgi_request, "user", None)
    return bool(user and user.is_authenticated)


@pytest.fixture
def world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # ten users per test
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CLIENT_ID": "matrix-client", "CLIENT_SECRET": "matrix-secret",
                         "ENVIRONMENT": "local", "API_BASE_URL": "http://127.0.0.1:9",
                         "AUTH_BASE_URL": "http://127.0.0.1:9"}
    a = OrganizationFactory(slug="org-a", name="Org A")
    b = OrganizationFactory(slug="org-b", name="Org B")
    connect(a, "9001")
    connect(b, "9002")
    return World(a, b)


CELLS = [(e, naming) for e in ENDPOINTS for naming in e.namings]


def test_the_matrix_covers_every_action_and_naming():
    assert {e.action for e in ENDPOINTS} == set(Action)
    assert {n for _, n in CELLS} == {"query", "header", "id", "path", "body"}
    assert len(CELLS) * len(USERS) >= 250


@pytest.mark.parametrize("endpoint, naming", CELLS, ids=[f"{e.name}-{n}" for e, n in CELLS])
def test_each_user_gets_what_the_rule_says(world, endpoint, naming):
    users = {name: make(world.a, world.b) for name, make in USERS.items()}
    ref = organization_ref(world.a)
    wrong = []
    for name, user in users.items():
        QboConnection.objects.filter(organization=world.a).update(status=QboConnection.Status.CONNECTED,
                                                                  paused_at=None, pause_reason="")
        client = Client()
        if user is not None:
            client.force_login(user)
        target = endpoint.target(world)
        params = {"org": ref} if naming in ("query", "path", "body") else {}
        headers = {"HTTP_X_ORGANIZATION": ref} if naming == "header" else {}
        response = endpoint.call(client, world, target, params, headers)
        want = expected(user, endpoint.action, world.a)
        got = outcome(endpoint, response)
        if got != want:
            wrong.append(f"{name}: expected {want}, got {got} ({response.status_code})")
            continue
        if endpoint.changed is not None:
            made = endpoint.changed(world, target, response)
            if made != (want == "allowed"):
                wrong.append(f"{name}: {want} but the change was {'made' if made else 'not made'}")
    assert not wrong, "\n".join(wrong)


def test_anonymous_is_the_same_as_inactive():
    assert expected(AnonymousUser(), Action.VIEW, None) == "unauthenticated"


# --- the admin's pages: A's rows are shown to A's staff and superusers, to no one else -----------------------------

ADMIN_VIEW_PERMS = tuple(f"{app}.view_{model}" for app, models in {
    "batchly": ("customer", "invoice", "item"),
    "qbo_sync": ("syncjob", "conflict", "qboconnection", "queueitem", "synclog", "auditentry"),
}.items() for model in models)

ADMIN_USERS: dict[str, Callable[[Any, Any], Any]] = {
    "anonymous": USERS["anonymous"],
    "superuser": USERS["superuser"],
    "staff-of-a": lambda a, b: _user("staff_a", a, "viewer", perms=ADMIN_VIEW_PERMS),
    "staff-of-b": lambda a, b: _user("staff_b", b, "owner", perms=ADMIN_VIEW_PERMS),
    "staff-no-membership": lambda a, b: _user("staff_none", perms=ADMIN_VIEW_PERMS),
    "member-of-a-not-staff": lambda a, b: _user("plain_a", a, "owner", perms=ADMIN_VIEW_PERMS, is_staff=False),
    "inactive-staff-of-a": lambda a, b: _user("gone_a", a, "owner", perms=ADMIN_VIEW_PERMS, is_active=False),
}
MARKER = "Secret Customer of A"


def test_the_admin_shows_a_rows_only_to_a_and_superusers(world):
    from batchly.models import Customer

    job, conflict = World.job(world), _conflict(world)
    customer = Customer.objects.get(pk=conflict.mapping.object_id)
    Customer.objects.filter(pk=customer.pk).update(display_name=MARKER)
    invoice_customer = CustomerFactory(organization=world.a)
    from tests.factories import InvoiceFactory

    invoice = InvoiceFactory(organization=world.a, customer=invoice_customer, lines=0, memo=MARKER)
    connection = QboConnection.objects.get(organization=world.a)
    connection.company_name = MARKER
    connection.save(update_fields=["company_name"])
    pages = {  # page -> whether it shows the marker
        f"/admin/batchly/customer/{customer.pk}/change/": True, f"/admin/batchly/invoice/{invoice.pk}/change/": True,
        f"/admin/qbo_sync/syncjob/{job.pk}/change/": False, f"/admin/qbo_sync/conflict/{conflict.pk}/change/": False,
        f"/admin/qbo_sync/qboconnection/{connection.pk}/change/": True, "/admin/batchly/customer/": True,
        "/admin/qbo_sync/conflict/": False, "/admin/qbo_sync/qboconnection/": True,
    }
    wrong = []
    for name, make in ADMIN_USERS.items():
        user = make(world.a, world.b)
        client = Client()
        if user is not None:
            client.force_login(user)
        may = name in ("superuser", "staff-of-a")
        for page, with_marker in pages.items():
            response = client.get(page)
            shown = response.status_code == 200 and MARKER in response.content.decode()
            if may and (response.status_code != 200 or shown != with_marker):
                wrong.append(f"{name} {page}: {response.status_code}, shown={shown}; expected the page")
            if not may and (shown or (response.status_code == 200 and "change/" in page)):
                wrong.append(f"{name} {page}: {response.status_code}, A's row reached")
    assert not wrong, "\n".join(wrong)
