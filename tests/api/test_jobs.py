"""jobs/, jobs/{id}/ (progress, ETag/304), jobs/{id}/cancel/, sync/."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchly.models import Customer
from qbo_sync.api.views import ETAG_BUCKET_SECONDS
from qbo_sync.models import QueueItem, SyncJob
from qbo_sync.services import queue
from qbo_sync.services.outcomes import Outcome
from tests.api.conftest import client_for
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

JOBS = "/api/qbo/jobs/"


def job_url(pk: int) -> str:
    return f"{JOBS}{pk}/"


def finish_items(job: SyncJob, n: int, outcome=None) -> None:
    """Claim and complete (or fail) ``n`` of the job's items, as a worker would."""
    _, items = queue.claim_chunk("test", limit=n, organization_id=job.organization_id)
    queue.apply_outcomes(items, {i.pk: (outcome or Outcome.completed()) for i in items})


# --- list ----------------------------------------------------------------------------------------------------------

def test_list_shows_only_my_organizations_jobs(api, org_a, org_b, make_push_job):
    mine = make_push_job(org_a, 2)
    theirs = make_push_job(org_b, 2)
    body = api.get(JOBS).json()
    ids = [row["id"] for row in body["results"]]
    assert ids == [mine.pk] and theirs.pk not in ids
    row = body["results"][0]
    assert row["organization"] == "org-a" and row["total"] == 2 and row["pending"] == 2 and row["percent"] == 0.0
    assert row["url"].endswith(job_url(mine.pk))


def test_list_filters_by_state_entity_kind(api, org_a, make_push_job):
    push = make_push_job(org_a, 1)
    pull = queue.start_pull(org_a.pk, "Customer")
    SyncJob.objects.filter(pk=push.pk).update(state=SyncJob.State.COMPLETED)
    ids = lambda q: [r["id"] for r in api.get(JOBS + q).json()["results"]]  # noqa: E731
    assert ids("?kind=pull") == [pull.pk]
    assert ids("?state=completed") == [push.pk]
    assert set(ids("?entity=Customers")) == {push.pk, pull.pk}
    assert ids("?entity=invoice") == []


@pytest.mark.parametrize("query, field", [("?state=nope", "state"), ("?entity=widget", "entity"),
                                          ("?kind=5", "kind"), ("?limit=abc", "limit"), ("?limit=0", "limit"),
                                          ("?offset=-1", "offset")])
def test_list_bad_filters_are_400_with_the_field(api, org_a, query, field):
    response = api.get(JOBS + query)
    assert response.status_code == 400
    assert field in response.json()


def test_huge_limit_is_capped(api, org_a):
    SyncJob.objects.bulk_create([SyncJob(organization=org_a, kind="push", entity_type="Customer")
                                 for _ in range(205)])
    body = api.get(JOBS + "?limit=1000000000").json()
    assert body["count"] == 205 and len(body["results"]) == 200
    assert len(api.get(JOBS).json()["results"]) == 50


def test_list_is_a_constant_number_of_queries(api, org_a, make_push_job):
    make_push_job(org_a, 2)
    with CaptureQueriesContext(db_connection) as few:
        api.get(JOBS)
    for _ in range(5):
        make_push_job(org_a, 2)
    with CaptureQueriesContext(db_connection) as many:
        api.get(JOBS)
    assert len(many) == len(few)


def test_anonymous_is_refused(org_a, make_push_job):
    job = make_push_job(org_a, 1)
    client = APIClient()
    assert client.get(JOBS).status_code == 403
    assert client.get(job_url(job.pk)).status_code == 403
    assert client.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json").status_code == 403


def test_token_authentication(user_a, org_a, make_push_job):
    job = make_push_job(org_a, 1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user_a).key}")
    assert client.get(job_url(job.pk)).status_code == 200


# --- detail / progress ---------------------------------------------------------------------------------------------

def test_progress_counts_rate_and_eta(api, org_a, make_push_job):
    job = make_push_job(org_a, 4)
    finish_items(job, 2)
    finish_items(job, 1, Outcome.failed("Duplicate name", code="6240"))
    body = api.get(job_url(job.pk)).json()
    assert body["state"] == "running"
    assert (body["total"], body["pending"], body["completed"], body["failed"], body["dead"]) == (4, 1, 2, 1, 0)
    assert body["percent"] == 75.0 and body["done"] == 3 and body["remaining"] == 1
    assert body["rate_per_minute"] > 0 and body["eta_seconds"] is not None
    assert body["slow_reason"] is None and body["started_at"] and body["finished_at"] is None
    assert body["failures"] == [{"object_id": body["failures"][0]["object_id"], "qbo_id": "", "status": "failed",
                                 "error": "Duplicate name", "error_code": "6240"}]
    assert body["progress_page"].endswith(f"/qbo/jobs/{job.pk}/progress/")
    finish_items(job, 1)
    body = api.get(job_url(job.pk)).json()
    assert body["state"] == "failed" and body["percent"] == 100.0 and body["finished_at"]


def test_slow_reason_when_throttled(api, org_a, make_push_job):
    job = make_push_job(org_a, 2)
    finish_items(job, 1, Outcome.retry("429", code="throttled", retry_after=60))
    assert api.get(job_url(job.pk)).json()["slow_reason"] == "throttled"


def test_unchanged_job_answers_304(api, org_a, make_push_job):
    job = make_push_job(org_a, 3)
    # Frozen at the start of an ETag time bucket (sessions stay valid: the clock stays near now).
    start = (int(time.time()) // ETAG_BUCKET_SECONDS + 1) * ETAG_BUCKET_SECONDS + 1
    with time_machine.travel(start, tick=False):
        first = api.get(job_url(job.pk))
        etag = first["ETag"]
        assert first.status_code == 200 and etag
        with CaptureQueriesContext(db_connection) as queries:
            again = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again["ETag"] == etag and not again.content
        job_queries = [q for q in queries if "qbo_sync_" in q["sql"]]
        # The job row (with its connection's state) and one query over its items answer an unchanged job.
        assert len(job_queries) == 2, job_queries
        finish_items(job, 1)
        changed = api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and changed["ETag"] != etag and changed.json()["completed"] == 1


def _poll_queries(client, job) -> list[str]:
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(job_url(job.pk))
    assert response.status_code == 200, response.content
    return [q["sql"] for q in queries]


def test_a_poll_is_five_queries_and_writes_nothing(org_a, make_push_job):
    """The polled call: session, user, the job (the caller's organizations as a subquery, the connection's state as
    subqueries), the view permission in the job's organization (Batchly's checker: one membership row), one query
    over the job's items. Not more for a bigger job, nor for a member of more organizations; no session write."""
    user = MembershipFactory(organization=org_a, user=UserFactory(username="poller")).user
    client = client_for(user)
    small, big = make_push_job(org_a, 2), make_push_job(org_a, 40)
    finish_items(big, 25)
    client.get(job_url(small.pk))  # a first request may set cookies; polls after it are what counts
    first = _poll_queries(client, small)
    assert len(first) == 5, first
    assert not [q for q in first if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))], first
    assert len(_poll_queries(client, big)) == 5
    for n in range(3):
        MembershipFactory(organization=OrganizationFactory(slug=f"more-{n}"), user=user)
    assert len(_poll_queries(client, big)) == 5


def test_a_removed_member_is_refused_on_the_next_poll(org_a, make_push_job):
    membership = MembershipFactory(organization=org_a, user=UserFactory(username="leaver"))
    client = client_for(membership.user)
    job = make_push_job(org_a, 2)
    first = client.get(job_url(job.pk))
    assert first.status_code == 200
    membership.delete()
    assert client.get(job_url(job.pk)).status_code == 404
    assert client.get(job_url(job.pk), HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 404


def test_a_permission_taken_away_is_refused_on_the_next_poll(api, org_a, make_push_job, settings):
    """The checker is asked on every poll (nothing cached across requests): a host revoking ``view`` is obeyed at
    once, by the detail and by the list."""
    job = make_push_job(org_a, 2)
    assert api.get(job_url(job.pk)).status_code == 200
    settings.QBO_SYNC = {**settings.QBO_SYNC, "PERMISSION_CHECKER": lambda user, action, org: action != "view"}
    assert api.get(job_url(job.pk)).status_code == 404
    assert api.get(job_url(job.pk) + "?org=org-a").status_code == 404
    assert api.get(JOBS).json()["results"] == []


def test_finished_job_stays_304(api, org_a, make_push_job):
    job = make_push_job(org_a, 1)
    finish_items(job, 1)
    etag = api.get(job_url(job.pk))["ETag"]
    with time_machine.travel(time.time() + 3600, tick=False):
        assert api.get(job_url(job.pk), HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert api.get(job_url(job.pk), HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_other_organizations_job_is_404(api, org_b, make_push_job):
    theirs = make_push_job(org_b, 1)
    assert api.get(job_url(theirs.pk)).status_code == 404
    assert api.get(job_url(999999)).status_code == 404
    assert api.get(job_url(10**30)).status_code == 404


def test_several_organizations_and_the_org_parameter(org_a, org_b, make_push_job):
    carol = UserFactory(username="carol")
    MembershipFactory(user=carol, organization=org_a)
    MembershipFactory(user=carol, organization=org_b)
    a, b = make_push_job(org_a, 1), make_push_job(org_b, 1)
    client = client_for(carol)
    assert {r["id"] for r in client.get(JOBS).json()["results"]} == {a.pk, b.pk}
    assert [r["id"] for r in client.get(JOBS + "?org=org-b").json()["results"]] == [b.pk]
    assert [r["id"] for r in client.get(JOBS, HTTP_X_ORGANIZATION=org_a.slug).json()["results"]] == [a.pk]
    assert client.get(job_url(a.pk) + "?org=org-b").status_code == 404
    assert client.get(JOBS + "?org=org-a", HTTP_X_ORGANIZATION="org-b").status_code == 400
    # Acting on one organization needs a choice.
    response = client.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json")
    assert response.status_code == 400 and "org" in response.json()
    assert client.get("/api/qbo/progress/").status_code == 400
    assert client.get("/api/qbo/progress/?org=org-b").json()["organization"] == "org-b"


def test_an_invisible_org_answers_404(api, org_a, org_b):
    assert api.get(JOBS + "?org=org-b").status_code == 404
    assert api.get(JOBS + "?org=no-such-org").status_code == 404
    assert api.get("/api/qbo/connection/", HTTP_X_ORGANIZATION="org-b").status_code == 404


def test_superuser_sees_every_organization(org_a, org_b, make_push_job):
    root = UserFactory(username="root", is_superuser=True)
    a, b = make_push_job(org_a, 1), make_push_job(org_b, 1)
    assert {r["id"] for r in client_for(root).get(JOBS).json()["results"]} == {a.pk, b.pk}


def test_member_of_no_organization(db, org_a, make_push_job):
    make_push_job(org_a, 1)
    client = client_for(UserFactory(username="nobody"))
    assert client.get(JOBS).json()["results"] == []
    assert client.get("/api/qbo/connection/").status_code == 403


# --- cancel --------------------------------------------------------------------------------------------------------

def test_cancel(api, org_a, make_push_job):
    job = make_push_job(org_a, 3)
    finish_items(job, 1)
    response = api.post(job_url(job.pk) + "cancel/", format="json")
    assert response.status_code == 200
    assert response.json() == {"job": job.pk, "state": "cancelled", "cancelled_items": 2}
    assert QueueItem.objects.filter(job=job, status="cancelled").count() == 2
    again = api.post(job_url(job.pk) + "cancel/", {}, format="json")
    assert again.status_code == 409


def test_cancel_refuses_unknown_fields(api, org_a, make_push_job):
    job = make_push_job(org_a, 1)
    response = api.post(job_url(job.pk) + "cancel/", {"force": True}, format="json")
    assert response.status_code == 400 and response.json() == {"force": ["Unknown field."]}
    assert SyncJob.objects.get(pk=job.pk).state == "pending"


def test_cannot_cancel_another_organizations_job(api, org_b, make_push_job):
    theirs = make_push_job(org_b, 2)
    assert api.post(job_url(theirs.pk) + "cancel/", format="json").status_code == 404
    assert SyncJob.objects.get(pk=theirs.pk).state == "pending"
    assert not QueueItem.objects.filter(job=theirs, status="cancelled").exists()


# --- sync ----------------------------------------------------------------------------------------------------------

def test_sync_push_ids(api, org_a):
    customers = CustomerFactory.create_batch(3, organization=org_a)
    response = api.post("/api/qbo/sync/", {"entity": "customer", "ids": [customers[0].pk, str(customers[1].pk)]},
                        format="json")
    assert response.status_code == 202
    body = response.json()
    job = SyncJob.objects.get(pk=body["job"])
    assert response["Location"] == body["url"] and body["url"].endswith(job_url(job.pk))
    assert (job.organization_id, job.kind, job.entity_type, job.total, body["total"]) == (org_a.pk, "push",
                                                                                          "Customer", 2, 2)
    assert job.started_by.username == "alice"
    assert api.get(body["url"]).status_code == 200


def test_sync_push_all_and_pull(api, org_a):
    CustomerFactory.create_batch(2, organization=org_a)
    assert api.post("/api/qbo/sync/", {"entity": "Customers", "all": True}, format="json").json()["total"] == 2
    pull = api.post("/api/qbo/sync/", {"entity": "payment", "direction": "pull", "full": True}, format="json")
    assert pull.status_code == 202
    job = SyncJob.objects.get(pk=pull.json()["job"])
    assert (job.kind, job.entity_type, job.options) == ("pull", "Payment", {"full": True})


def test_sync_dry_run_answers_the_plan_and_starts_nothing(api, org_a):
    customers = CustomerFactory.create_batch(2, organization=org_a)
    QueueItem.objects.all().delete()
    response = api.post("/api/qbo/sync/", {"entity": "customer", "ids": [c.pk for c in customers], "dry_run": True},
                        format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["dry_run"], body["direction"], body["entity"], body["organization"]) == (True, "push", "Customer",
                                                                                         "org-a")
    assert body["summary"] == {"create": 2}
    assert [(r["id"], r["action"], r["code"]) for r in body["rows"]] == [(str(c.pk), "create", "") for c in customers]
    assert set(body["rows"][0]) == {"id", "label", "action", "reason", "fields", "held", "code"}
    pull = api.post("/api/qbo/sync/", {"entity": "payment", "direction": "pull", "dry_run": True}, format="json").json()
    assert (pull["mode"], pull["since"], pull["reads"]) == ("full", None, ["Invoice"])
    assert not SyncJob.objects.exists() and not QueueItem.objects.exists()


def _nothing_written(before: int) -> None:
    assert SyncJob.objects.count() == before


@pytest.mark.parametrize("payload, field", [
    ({}, "entity"),
    ({"entity": "widget", "all": True}, "entity"),
    ({"entity": 5, "all": True}, "entity"),
    ({"entity": "customer"}, "ids"),
    ({"entity": "customer", "ids": []}, "ids"),
    ({"entity": "customer", "ids": "1,2"}, "ids"),
    ({"entity": "customer", "ids": [{"a": 1}]}, "ids"),
    ({"entity": "customer", "ids": ["1"], "all": True}, "ids"),
    ({"entity": "customer", "all": "maybe"}, "all"),
    ({"entity": "customer", "all": True, "full": True}, "full"),
    ({"entity": "customer", "all": True, "direction": "sideways"}, "direction"),
    ({"entity": "customer", "direction": "pull", "ids": ["1"]}, "ids"),
    ({"entity": "invoice", "direction": "pull"}, "entity"),
    ({"entity": "payment", "all": True}, "entity"),
    ({"entity": "customer", "all": True, "priority": "high"}, "priority"),
    ({"entity": "customer", "ids": ["999999"]}, "ids"),
    ({"entity": "customer", "ids": ["abc"]}, "ids"),
    ({"entity": "customer", "ids": [str(10**30)]}, "ids"),
    ({"entity": "customer", "ids": ["x" * 65]}, "ids"),
])
def test_sync_bad_input_is_400_and_writes_nothing(api, org_a, payload, field):
    before = SyncJob.objects.count()
    response = api.post("/api/qbo/sync/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    _nothing_written(before)
    assert not QueueItem.objects.exists()


def test_sync_malformed_json_and_wrong_shapes(api, org_a):
    bad = api.post("/api/qbo/sync/", data='{"entity": "customer", ', content_type="application/json")
    assert bad.status_code == 400 and "detail" in bad.json()
    listed = api.post("/api/qbo/sync/", data='["customer"]', content_type="application/json")
    assert listed.status_code == 400 and "non_field_errors" in listed.json()
    form = api.post("/api/qbo/sync/", data={"entity": "customer", "all": "true"})
    assert form.status_code == 415
    assert not SyncJob.objects.exists()


def test_sync_cannot_push_another_organizations_rows(api, org_a, org_b):
    theirs = CustomerFactory(organization=org_b)
    response = api.post("/api/qbo/sync/", {"entity": "customer", "ids": [theirs.pk]}, format="json")
    assert response.status_code == 400 and "ids" in response.json()
    response = api.post("/api/qbo/sync/?org=org-b", {"entity": "customer", "ids": [theirs.pk]}, format="json")
    assert response.status_code == 404
    assert not SyncJob.objects.exists()


def test_sync_without_connection_is_400_on_org(db):
    org = OrganizationFactory(slug="lonely")
    user = MembershipFactory(organization=org, user=UserFactory(username="dan")).user
    CustomerFactory(organization=org)
    response = client_for(user).post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json")
    assert response.status_code == 400 and "org" in response.json()
    assert not SyncJob.objects.exists()


def test_sync_with_csrf_enforced_needs_the_token(user_a, org_a):
    CustomerFactory(organization=org_a)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user_a)
    assert client.post("/api/qbo/sync/", {"entity": "customer", "all": True}, format="json").status_code == 403
    assert Customer.objects.count() == 1 and not SyncJob.objects.exists()
