"""Finding 5 (issue 12): every hostile input to every surface is a clean refusal, and nothing is stored.

A generated list of bad inputs (well over 200) is thrown at the webhook endpoint, the REST API, the ``/qbo/`` pages
and the admin's forms by a member of one organization. Each must be refused cleanly: a 4xx for the webhook, the API
and the pages; for the admin's forms Django's own refusal (the form again with its errors, 200), a "no such object"
redirect (302) or a 4xx. Never a 5xx, and no row is written anywhere. The same list runs on SQLite and on PostgreSQL
(``DATABASE_URL``), where NUL bytes, over-long values and out-of-range integers used to reach the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from qbo_sync.models import QboConnection
from qbo_sync.webhooks.verify import signature
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory

TOKEN = "verifier-token-for-bad-input-tests"
REALM = "4620816365000000001"
WEBHOOK = "/qbo/webhooks/"

#: Strings no surface should choke on.
HOSTILE = {
    "nul": "a\x00b",
    "nul-only": "\x00",
    "long": "x" * 5000,
    "huge-int": "9" * 30,
    "negative": "-1",
    "float": "1e309",
    "path": "../../etc/passwd",
    "html": "<script>alert(1)</script>",
    "sql": "' OR 1=1 --",
    "emoji": "\U0001f4a5" * 50,
    "control": "\x01\x1b[31m\x7f",
    "spaces": "   ",
}
#: Values that are wrong in any text field: a NUL byte, far over any column's length.
BAD_TEXT = {k: HOSTILE[k] for k in ("nul", "nul-only", "long")}
#: Values no identifier of QuickBooks' (realm, entity name, id, operation, time) can hold.
BAD_QBO_VALUE = {**BAD_TEXT, "control": HOSTILE["control"], "emoji": HOSTILE["emoji"], "over-32": "1" * 41}
#: Values that name no organization, job or row.
NOT_A_NAME = {k: v for k, v in HOSTILE.items() if k != "spaces"}
#: JSON nested deeper than the parser's recursion limit.
DEEP = ("[" * 100_000 + "]" * 100_000).encode()
DEEP_OBJECT = ('{"a":' * 50_000 + "1" + "}" * 50_000).encode()


@dataclass
class Case:
    surface: str  # webhook | api | page | admin
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""

    def __str__(self) -> str:
        return self.name


def signed(body: bytes, **headers: str) -> dict[str, str]:
    return {"HTTP_INTUIT_SIGNATURE": signature(body, TOKEN), **headers}


def legacy_body(entity: dict | Any = None, note: dict | None = None, change: Any = "default") -> bytes:
    entity = {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "2026-01-01T00:00:00Z",
              **(entity or {})}
    dce = {"entities": [entity]} if change == "default" else change
    return json.dumps({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": dce, **(note or {})}]}).encode()


def cloud_body(**event: Any) -> bytes:
    base = {"specversion": "1.0", "id": "evt-1", "type": "qbo.customer.updated", "intuitentityid": "1",
            "intuitaccountid": REALM, "time": "2026-01-01T00:00:00Z", "data": {}}
    return json.dumps([{**base, **event}]).encode()


def webhook_cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, body: bytes, headers: dict[str, str] | None = None, sign: bool = True) -> None:
        cases.append(Case("webhook", "post", WEBHOOK, body, headers=(signed(body) if sign else {}) | (headers or {}),
                          name=f"webhook-{name}"))

    ok = legacy_body()
    for value in ("abc", "-1", "1e9", "9" * 40, " ", "0x10", "\x00"):
        add(f"content-length-{value[:8]!r}", ok, {"CONTENT_LENGTH": value}, sign=False)
    add("no-signature", ok, sign=False)
    add("bad-signature", ok, {"HTTP_INTUIT_SIGNATURE": "x"}, sign=False)
    add("nul-signature", ok, {"HTTP_INTUIT_SIGNATURE": "\x00"}, sign=False)
    add("long-signature", ok, {"HTTP_INTUIT_SIGNATURE": "A" * 5000}, sign=False)
    add("non-ascii-signature", ok, {"HTTP_INTUIT_SIGNATURE": "é" * 44}, sign=False)
    add("deep-list", DEEP)
    add("deep-object", DEEP_OBJECT)
    add("deep-unsigned", DEEP, sign=False)
    for name, raw in {"not-json": b"not json", "binary": bytes(range(256)), "empty": b"", "null": b"null",
                      "number": b"12", "string": b'"x"', "object": b"{}", "bare-list": b"[1,2]",
                      "notifications-string": b'{"eventNotifications": "x"}',
                      "notifications-of-numbers": b'{"eventNotifications": [1, 2]}',
                      "nan": b'{"eventNotifications": NaN}', "huge-number": b"1" + b"0" * 5000}.items():
        add(name, raw)
    for name, change in {"string": "entities", "list": ["entities"], "number": 7, "true": True,
                         "entities-string": {"entities": "x"}, "entities-dict": {"entities": {"a": 1}},
                         "entities-of-strings": {"entities": ["x"]}, "entities-of-lists": {"entities": [[1]]}}.items():
        add(f"dataChangeEvent-{name}", legacy_body(change=change))
    for name, value in BAD_QBO_VALUE.items():
        for key in ("id", "operation", "lastUpdated", "name", "deletedId"):
            add(f"entity-{key}-{name}", legacy_body({key: value}))
        add(f"realm-{name}", legacy_body(note={"realmId": value}))
        for key in ("intuitentityid", "id", "time", "intuitaccountid"):
            if key != "id" or name not in ("emoji", "over-32"):  # an event id may be up to 128 characters
                add(f"cloud-{key}-{name}", cloud_body(**{key: value}))
        add(f"cloud-type-{name}", cloud_body(type=f"qbo.customer.{value}"))
        add(f"cloud-deletedid-{name}", cloud_body(type="qbo.customer.deleted", data={"deletedid": value}))
    for key in ("id", "name"):
        add(f"entity-{key}-blank", legacy_body({key: "   "}))
    add("realm-blank", legacy_body(note={"realmId": "  "}))
    for key in ("id", "operation", "lastUpdated", "name"):
        for name, value in {"object": {"a": 1}, "list": [1], "number": 10**50}.items():
            add(f"entity-{key}-{name}", legacy_body({key: value}))
    add("realm-object", legacy_body(note={"realmId": {"a": 1}}))
    return cases


API = "/api/qbo"


def api_cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, method: str, path: str, body: Any = None, headers: dict | None = None,
            content_type: str = "application/json") -> None:
        cases.append(Case("api", method, path, body, content_type, headers or {}, f"api-{name}"))

    for name, value in NOT_A_NAME.items():
        for endpoint in ("jobs/", "conflicts/", "progress/", "connection/", "entities/customer/1/status/"):
            add(f"org-{name}-{endpoint}", "get", f"{API}/{endpoint}", {"org": value})
        add(f"header-{name}", "get", f"{API}/jobs/", headers={"HTTP_X_ORGANIZATION": value})
        add(f"sync-org-{name}", "post", f"{API}/sync/?org=x", {"entity": "customer", "ids": ["1"]},
            headers={"HTTP_X_ORGANIZATION": value})
        for key in ("entity", "direction"):
            add(f"sync-{key}-{name}", "post", f"{API}/sync/", {"entity": "customer", "all": True, key: value})
        add(f"sync-ids-{name}", "post", f"{API}/sync/", {"entity": "customer", "ids": [value]})
        add(f"sync-unknown-field-{name}", "post", f"{API}/sync/", {"entity": "customer", "all": True, value: 1})
        for key in ("state", "entity", "kind", "limit", "offset"):
            add(f"jobs-filter-{key}-{name}", "get", f"{API}/jobs/", {key: value})
        add(f"resolve-keep-{name}", "post", f"{API}/conflicts/1/resolve/", {"keep": value})
        add(f"entity-status-id-{name}", "get", f"{API}/entities/customer/{value.replace('/', '_')}/status/")
        add(f"entity-status-entity-{name}", "get", f"{API}/entities/{value.replace('/', '_')}/1/status/")
    for name, value in BAD_TEXT.items():
        add(f"pause-reason-{name}", "post", f"{API}/connection/pause/", {"reason": value})
        for key in ("action", "surface", "entity", "object_id", "field"):
            add(f"audit-filter-{key}-{name}", "get", f"{API}/audit/", {key: value})
    for name, value in NOT_A_NAME.items():
        add(f"pause-org-{name}", "post", f"{API}/connection/pause/?org=x", {"reason": "r"},
            headers={"HTTP_X_ORGANIZATION": value})
        add(f"resume-org-{name}", "post", f"{API}/connection/resume/", {}, headers={"HTTP_X_ORGANIZATION": value})
    for pk in ("9" * 30, "0", "18446744073709551616", "9223372036854775808"):
        add(f"job-{pk[:6]}-{len(pk)}", "get", f"{API}/jobs/{pk}/")
        add(f"cancel-{pk[:6]}-{len(pk)}", "post", f"{API}/jobs/{pk}/cancel/", {})
        add(f"conflict-{pk[:6]}-{len(pk)}", "get", f"{API}/conflicts/{pk}/")
        add(f"resolve-{pk[:6]}-{len(pk)}", "post", f"{API}/conflicts/{pk}/resolve/", {"keep": "qbo"})
    for name, raw in {"deep": DEEP, "deep-object": DEEP_OBJECT, "not-json": b"{", "binary": bytes(range(256)),
                      "list": b"[]", "string": b'"customer"', "null": b"null", "number": b"1e999",
                      "nan": b'{"entity": NaN}', "huge-ids": json.dumps({"entity": "customer",
                                                                         "ids": ["1"] * 100_000}).encode(),
                      "ids-object": b'{"entity": "customer", "ids": {"a": 1}}',
                      "ids-nested": b'{"entity": "customer", "ids": [[1]]}',
                      "all-string": b'{"entity": "customer", "all": "maybe"}'}.items():
        add(f"sync-body-{name}", "post", f"{API}/sync/", raw)
        add(f"resolve-body-{name}", "post", f"{API}/conflicts/1/resolve/", raw)
        add(f"cancel-body-{name}", "post", f"{API}/jobs/1/cancel/", raw)
    add("sync-form-encoded", "post", f"{API}/sync/", "entity=customer&all=true",
        content_type="application/x-www-form-urlencoded")
    add("sync-xml", "post", f"{API}/sync/", "<sync/>", content_type="application/xml")
    add("sync-get", "get", f"{API}/sync/")
    add("jobs-delete", "delete", f"{API}/jobs/1/")
    return cases


def page_cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, method: str, path: str, body: Any = None) -> None:
        cases.append(Case("page", method, path, body, "application/x-www-form-urlencoded" if method == "post" else "",
                          name=f"page-{name}"))

    for name, value in NOT_A_NAME.items():
        slug = value.replace("/", "_")
        add(f"connect-{name}", "get", f"/qbo/connect/{slug}/")
        add(f"disconnect-get-{name}", "get", "/qbo/disconnect/", {"org": value})
        add(f"disconnect-post-{name}", "post", "/qbo/disconnect/", {"org": value})
        add(f"dashboard-{name}", "get", "/qbo/dashboard/", {"org": value})
        for key in ("state", "code", "realmId", "error"):
            params = {"state": "s", "code": "c", "realmId": "1", key: value}
            add(f"callback-{key}-{name}", "get", "/qbo/oauth/callback/", params)
    for pk in ("9" * 30, "9223372036854775808", "0"):
        add(f"progress-page-{len(pk)}-{pk[:3]}", "get", f"/qbo/jobs/{pk}/progress/")
    return cases


def admin_cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, method: str, path: str, body: Any = None) -> None:
        cases.append(Case("admin", method, path, body, "application/x-www-form-urlencoded" if method == "post" else "",
                          name=f"admin-{name}"))

    for name, value in BAD_TEXT.items():
        for field_name in ("display_name", "phone", "bill_country"):
            add(f"customer-{field_name}-{name}", "post", "/admin/batchly/customer/add/",
                {"organization": "ORG", "display_name": "Fine", field_name: value})
    for name, value in NOT_A_NAME.items():
        add(f"customer-email-{name}", "post", "/admin/batchly/customer/add/",
            {"organization": "ORG", "display_name": "Fine", "email": value})
        add(f"customer-organization-{name}", "post", "/admin/batchly/customer/add/",
            {"organization": value, "display_name": "Fine"})
        if name not in ("negative",):
            add(f"item-price-{name}", "post", "/admin/batchly/item/add/",
                {"organization": "ORG", "name": "Fine", "unit_price": value, "type": "Service"})
        add(f"item-type-{name}", "post", "/admin/batchly/item/add/",
            {"organization": "ORG", "name": "Fine", "unit_price": "1", "type": value})
        for model in ("customer", "invoice", "qbo_sync/syncjob", "qbo_sync/conflict", "qbo_sync/synclog"):
            path = model if "/" in model else f"batchly/{model}"
            add(f"{model}-search-{name}", "get", f"/admin/{path}/", {"q": value})
        add(f"customer-change-{name}", "get", f"/admin/batchly/customer/{value.replace('/', '_')}/change/")
        add(f"customer-action-{name}", "post", "/admin/batchly/customer/",
            {"action": "delete_selected", "_selected_action": value})
        add(f"queue-action-{name}", "post", "/admin/qbo_sync/queueitem/",
            {"action": "retry_failed", "_selected_action": value})
        add(f"customer-filter-{name}", "get", "/admin/batchly/customer/", {"organization__id__exact": value})
    return cases


CASES = webhook_cases() + api_cases() + page_cases() + admin_cases()


def test_the_list_is_long_enough():
    assert len(CASES) >= 200
    assert {c.surface for c in CASES} == {"webhook", "api", "page", "admin"}


#: Tables that a refused request must leave alone (SyncLog is counted apart: refusals are aggregated, see
#: test_refusal_log.py).
WATCHED = ["qbo_sync.AuditEntry", "qbo_sync.WebhookEvent", "qbo_sync.SyncJob", "qbo_sync.QueueItem",
           "qbo_sync.Conflict", "qbo_sync.EntityMapping", "qbo_sync.QboConnection", "batchly.Customer", "batchly.Item",
           "batchly.Invoice", "batchly.Organization", "batchly.Membership"]


def snapshot() -> dict[str, Any]:
    state = {label: apps.get_model(label).objects.count() for label in WATCHED}
    state["connection"] = list(QboConnection.objects.values_list("status", "realm_id", "paused_at", "updated_at"))
    return state


@pytest.fixture
def member(db, settings):
    settings.QBO_SYNC = {**settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": TOKEN}
    org = OrganizationFactory(name="Fuzz Org", slug="fuzz-org")
    QboConnection.objects.create(organization=org, realm_id=REALM, environment="local", company_name="Fuzz Books",
                                 status=QboConnection.Status.CONNECTED, connected_at=timezone.now())
    CustomerFactory(organization=org, display_name="Existing")
    user = UserFactory(username="fuzzer")
    MembershipFactory(user=user, organization=org)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["batchly", "qbo_sync"]))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client, org


def send(client: Client, case: Case, org) -> Any:
    body = case.body
    if isinstance(body, dict):
        body = {k: (org.pk if v == "ORG" else v) for k, v in body.items()}
    if case.method == "get":
        return client.get(case.path, body or {}, **case.headers)
    if case.content_type == "application/json" and not isinstance(body, (bytes, str)):
        body = json.dumps(body if body is not None else {})
    if case.content_type == "application/x-www-form-urlencoded" and isinstance(body, dict):
        return client.post(case.path, body or {}, **case.headers)
    return getattr(client, case.method)(case.path, data=body or b"", content_type=case.content_type, **case.headers)


def groups(cases: list[Case], size: int = 40) -> list[tuple[str, list[Case]]]:
    """The cases in runs of ``size`` per surface (one test each: one user and login for a run, not per case)."""
    out = []
    for surface in ("webhook", "api", "page", "admin"):
        mine = [c for c in cases if c.surface == surface]
        out += [(f"{surface}-{i // size + 1}", mine[i:i + size]) for i in range(0, len(mine), size)]
    return out


@pytest.mark.parametrize("cases", [g[1] for g in groups(CASES)], ids=[g[0] for g in groups(CASES)])
def test_bad_inputs_are_refused_cleanly_and_store_nothing(member, cases):
    client, org = member
    failures = []
    for case in cases:
        before = snapshot()
        response = send(client, case, org)
        clean = ({200, 302, 400, 403, 404} if case.surface == "admin" else set(range(400, 500)))
        if response.status_code not in clean:
            failures.append(f"{case}: {response.status_code} {response.content[:120]!r}")
        elif snapshot() != before:
            failures.append(f"{case}: stored something ({response.status_code})")
    assert not failures, "\n".join(failures)
