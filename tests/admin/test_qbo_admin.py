"""qbo_sync's own admin: connections (tokens never shown), jobs, queue items, conflicts, the log and cursors; what
each action does and who may see or run it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from batchly.models import Customer
from qbo_sync.models import Conflict, OAuthState, PullCursor, QboConnection, QueueItem, SyncLog
from qbo_sync.services import jobs
from tests.admin.conftest import grant, staff_client
from tests.factories import CustomerFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ACCESS = "ACCESS-TOKEN-never-shown-4f1c9e"
REFRESH = "REFRESH-TOKEN-never-shown-77ab20"


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:qbo_sync_{model}_{view}", args=args)


def run_action(client, model: str, action: str, pks, **extra):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra}
    if "post" in extra:
        data.pop("index")
    return client.post(url(model), data)


def action_choices(client, model: str) -> set[str]:
    response = client.get(url(model))
    assert response.status_code == 200
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


def item(org, status="pending", entity="Customer", operation="push", object_id="1", **kwargs) -> QueueItem:
    return QueueItem.objects.create(organization=org, entity_type=entity, object_id=object_id, operation=operation,
                                    status=status, next_attempt_at=timezone.now(), **kwargs)


# --- connections ---------------------------------------------------------------------------------------------------


@pytest.fixture
def secret_connection(connection) -> QboConnection:
    connection.access_token = ACCESS
    connection.refresh_token = REFRESH
    connection.last_error = "Token refresh failed once"
    connection.save()
    return connection


def assert_no_secrets(html: str, connection: QboConnection) -> None:
    for secret in (ACCESS, REFRESH, connection.access_token_encrypted, connection.refresh_token_encrypted,
                   "access_token_encrypted", "refresh_token_encrypted"):
        assert secret not in html


def test_tokens_never_appear_on_any_admin_page(secret_connection, other_org, admin_client, operator_client) -> None:
    conn = secret_connection
    job = jobs.start_push(conn.organization_id, "Customer", [CustomerFactory(organization=conn.organization).pk])
    pages = [
        reverse("admin:index"), url("qboconnection"), url("qboconnection", "change", conn.pk),
        url("qboconnection", "history", conn.pk), url("qboconnection", "disconnect", conn.pk),
        url("qboconnection", "connect"), url("qboconnection") + "?q=" + ACCESS[:12],
        url("syncjob"), url("syncjob", "change", job.pk), url("queueitem"), url("synclog"), url("conflict"),
        url("pullcursor"), reverse("admin:batchly_customer_changelist"),
    ]
    for client in (admin_client, operator_client):
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, page
            assert_no_secrets(response.content.decode(), conn)
    shown = admin_client.get(url("qboconnection", "change", conn.pk)).content.decode()
    assert "Token refresh failed once" in shown and conn.realm_id in shown and "Sandbox Company" in shown


def test_connection_pages_are_read_only_and_have_no_add_or_delete(secret_connection, admin_client) -> None:
    conn = secret_connection
    assert admin_client.get(url("qboconnection", "add")).status_code == 403
    assert admin_client.get(url("qboconnection", "delete", conn.pk)).status_code == 403
    assert admin_client.post(url("qboconnection", "change", conn.pk), {"status": "disconnected"}).status_code == 403
    conn.refresh_from_db()
    assert conn.status == "connected" and conn.access_token == ACCESS
    assert action_choices(admin_client, "qboconnection") == {"", "pause_selected", "resume_selected",
                                                             "disconnect_selected"}


def test_disconnect_asks_then_revokes_and_forgets_the_tokens(secret_connection, admin_client) -> None:
    conn = secret_connection
    page = admin_client.get(url("qboconnection", "change", conn.pk)).content.decode()
    assert url("qboconnection", "disconnect", conn.pk) in page and "Reconnect" in page
    confirm = admin_client.get(url("qboconnection", "disconnect", conn.pk))
    assert confirm.status_code == 200 and "Yes, disconnect" in confirm.content.decode()
    conn.refresh_from_db()
    assert conn.status == "connected"
    done = admin_client.post(url("qboconnection", "disconnect", conn.pk))
    assert done.status_code == 302 and done["Location"] == url("qboconnection", "change", conn.pk)
    conn.refresh_from_db()
    assert conn.status == "disconnected" and not conn.access_token_encrypted and not conn.refresh_token_encrypted


def test_disconnect_action_confirms_first(other_org, admin_client) -> None:
    conn = QboConnection.objects.get(organization=other_org)
    page = run_action(admin_client, "qboconnection", "disconnect_selected", [conn.pk])
    assert page.status_code == 200 and "Yes, disconnect" in page.content.decode()
    conn.refresh_from_db()
    assert conn.status == "connected"
    run_action(admin_client, "qboconnection", "disconnect_selected", [conn.pk], post="yes")
    conn.refresh_from_db()
    assert conn.status == "disconnected"


def test_reconnect_and_connect_send_the_user_to_intuit(secret_connection, other_org, operator, operator_client,
                                                       settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "REDIRECT_URI": "http://testserver/qbo/oauth/callback/"}
    conn = secret_connection
    assert operator_client.get(url("qboconnection", "reconnect", conn.pk)).status_code == 403  # POST only
    response = operator_client.post(url("qboconnection", "reconnect", conn.pk))
    assert response.status_code == 302 and "state=" in response["Location"]
    assert OAuthState.objects.filter(organization=conn.organization, user=operator).count() == 1
    # The connect page offers only the operator's organizations.
    form = operator_client.get(url("qboconnection", "connect")).context["form"]
    assert list(form.fields["organization"].queryset) == [conn.organization]
    refused = operator_client.post(url("qboconnection", "connect"), {"organization": other_org.pk})
    assert refused.status_code == 200 and refused.context["form"].errors
    started = operator_client.post(url("qboconnection", "connect"), {"organization": conn.organization.pk})
    assert started.status_code == 302 and "state=" in started["Location"]


def test_connect_without_intuit_keys_explains_what_to_set(connection, admin_client, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "REDIRECT_URI": ""}
    response = admin_client.post(url("qboconnection", "reconnect", connection.pk), follow=True)
    assert "QBO_SYNC[&quot;REDIRECT_URI&quot;]" in response.content.decode()


def test_operators_see_only_their_connection(secret_connection, other_org, operator_client, viewer_client) -> None:
    conn = secret_connection
    theirs = QboConnection.objects.get(organization=other_org)
    assert list(operator_client.get(url("qboconnection")).context["cl"].result_list) == [conn]
    assert operator_client.get(url("qboconnection", "change", theirs.pk)).status_code == 302  # "does not exist"
    assert operator_client.get(url("qboconnection", "disconnect", theirs.pk)).status_code == 404
    assert operator_client.post(url("qboconnection", "disconnect", theirs.pk)).status_code == 404
    assert operator_client.post(url("qboconnection", "reconnect", theirs.pk)).status_code == 404
    run_action(operator_client, "qboconnection", "disconnect_selected", [theirs.pk], post="yes")
    theirs.refresh_from_db()
    assert theirs.status == "connected"
    # Viewers may look, not act.
    assert action_choices(viewer_client, "qboconnection") == set()
    assert "Connect an organization" not in viewer_client.get(url("qboconnection")).content.decode()
    assert viewer_client.get(url("qboconnection", "connect")).status_code == 403
    assert viewer_client.post(url("qboconnection", "disconnect", conn.pk)).status_code == 403


# --- jobs ----------------------------------------------------------------------------------------------------------


def test_job_pages_show_live_progress_and_cancel(org, other_org, admin_client, operator_client) -> None:
    customers = [CustomerFactory(organization=org) for _ in range(3)]
    QueueItem.objects.all().delete()
    job = jobs.start_push(org.pk, "Customer", [c.pk for c in customers])
    job.items.filter(object_id=str(customers[0].pk)).update(status="completed", completed_at=timezone.now())
    job.items.filter(object_id=str(customers[1].pk)).update(status="failed", last_error="nope")
    theirs = jobs.start_push(other_org.pk, "Customer", [CustomerFactory(organization=other_org).pk])

    listing = admin_client.get(url("syncjob")).content.decode()
    assert "2/3 (66.7%)" in listing and "1 failed" in listing
    page = admin_client.get(url("syncjob", "change", job.pk)).content.decode()
    assert "Live progress" in page and "2 of 3 (66.7%)" in page
    try:
        progress = reverse("qbo_sync:job-progress", args=[job.pk])
    except Exception:
        progress = None
    if progress:
        assert f'href="{progress}"' in page
    assert f"?job__id__exact={job.pk}" in page
    items = admin_client.get(url("queueitem") + f"?job__id__exact={job.pk}&status__exact=failed")
    assert [i.object_id for i in items.context["cl"].result_list] == [str(customers[1].pk)]

    assert list(operator_client.get(url("syncjob")).context["cl"].result_list) == [job]
    assert operator_client.get(url("syncjob", "change", theirs.pk)).status_code == 302
    run_action(operator_client, "syncjob", "cancel_jobs", [job.pk, theirs.pk])
    job.refresh_from_db()
    theirs.refresh_from_db()
    assert job.state == "cancelled" and theirs.state == "pending"
    assert set(job.items.values_list("status", flat=True)) == {"completed", "failed", "cancelled"}


def test_jobs_are_read_only_and_cancel_needs_the_change_permission(org, admin_client, viewer_client) -> None:
    job = jobs.start_push(org.pk, "Customer", [CustomerFactory(organization=org).pk])
    assert admin_client.get(url("syncjob", "add")).status_code == 403
    assert admin_client.post(url("syncjob", "change", job.pk), {"state": "completed"}).status_code == 403
    assert "cancel_jobs" in action_choices(admin_client, "syncjob")
    assert action_choices(viewer_client, "syncjob") == set()
    run_action(viewer_client, "syncjob", "cancel_jobs", [job.pk])
    job.refresh_from_db()
    assert job.state == "pending"


# --- queue items ---------------------------------------------------------------------------------------------------


def test_queue_filters_by_status_entity_operation_and_organization(org, other_org, admin_client) -> None:
    failed = item(org, "failed", last_error="boom")
    dead = item(org, "dead", entity="Item", object_id="2")
    pull = item(org, "pending", entity="Customer", operation="pull", object_id="", qbo_id="58")
    theirs = item(other_org, "failed", object_id="3")

    def listed(query: str) -> set[int]:
        response = admin_client.get(url("queueitem") + query)
        assert response.status_code == 200
        return {i.pk for i in response.context["cl"].result_list}

    assert listed("?status__exact=failed") == {failed.pk, theirs.pk}
    assert listed("?entity_type__exact=Item") == {dead.pk}
    assert listed("?operation__exact=pull") == {pull.pk}
    assert listed(f"?organization__id__exact={other_org.pk}") == {theirs.pk}
    html = admin_client.get(url("queueitem")).content.decode()
    for label in ("By status", "By entity type", "By operation", "By organization"):
        assert label in html


def test_queue_actions_retry_retry_dead_and_cancel(org, other_org, operator_client) -> None:
    failed, dead = item(org, "failed", object_id="1", attempts=3), item(org, "dead", object_id="2", attempts=8)
    pending, theirs = item(org, "pending", object_id="3"), item(other_org, "failed", object_id="4")
    everything = [failed.pk, dead.pk, pending.pk, theirs.pk]

    run_action(operator_client, "queueitem", "retry_failed", everything)
    statuses = dict(QueueItem.objects.values_list("pk", "status"))
    assert statuses[failed.pk] == "pending" and statuses[dead.pk] == "dead" and statuses[theirs.pk] == "failed"
    assert QueueItem.objects.get(pk=failed.pk).attempts == 0

    run_action(operator_client, "queueitem", "retry_including_dead", everything)
    assert QueueItem.objects.get(pk=dead.pk).status == "pending"
    assert QueueItem.objects.get(pk=theirs.pk).status == "failed"

    response = run_action(operator_client, "queueitem", "cancel_pending", everything)
    assert response.status_code == 302
    statuses = dict(QueueItem.objects.values_list("pk", "status"))
    assert statuses[failed.pk] == statuses[dead.pk] == statuses[pending.pk] == "cancelled"
    assert statuses[theirs.pk] == "failed"


def test_queue_items_are_read_only_and_actions_need_the_change_permission(org, admin_client, viewer_client) -> None:
    failed = item(org, "failed")
    assert admin_client.get(url("queueitem", "add")).status_code == 403
    assert admin_client.get(url("queueitem", "delete", failed.pk)).status_code == 403
    page = admin_client.get(url("queueitem", "change", failed.pk))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(url("queueitem", "change", failed.pk), {"status": "completed"}).status_code == 403
    assert action_choices(admin_client, "queueitem") == {"", "retry_failed", "retry_including_dead",
                                                         "cancel_pending"}
    assert action_choices(viewer_client, "queueitem") == set()
    run_action(viewer_client, "queueitem", "retry_failed", [failed.pk])
    failed.refresh_from_db()
    assert failed.status == "failed"


# --- conflicts -----------------------------------------------------------------------------------------------------


def host_email(conflict: Conflict) -> str:
    return Customer.objects.get(pk=conflict.mapping.object_id).email


def test_conflict_page_shows_the_three_values_side_by_side(org, admin_client, make_conflict) -> None:
    conflict = make_conflict(org)
    page = admin_client.get(url("conflict", "change", conflict.pk)).content.decode()
    assert "qbo-conflict-values" in page
    for side, value in (("Base (last agreed)", "base@example.com"), ("Batchly", "host@example.com"),
                        ("QuickBooks", "qbo@example.com")):
        assert side in page and value in page
    assert "<th>Batchly</th><td><code>host@example.com</code>" in page  # the host's side, named by HOST_LABEL
    assert "critical" in page and url("conflict", "resolve", conflict.pk) in page
    listing = admin_client.get(url("conflict")).content.decode()
    assert "host@example.com" in listing and "qbo@example.com" in listing and "base@example.com" in listing


def test_the_host_side_is_named_by_host_label(org, admin_client, make_conflict, settings) -> None:
    settings.QBO_SYNC = {**settings.QBO_SYNC, "HOST_LABEL": "Acme Books"}
    conflict = make_conflict(org)
    page = admin_client.get(url("conflict", "resolve", conflict.pk)).content.decode()
    assert "Keep Acme Books's value</button>" in page and "<th>Acme Books</th>" in page
    listing = admin_client.get(url("conflict")).content.decode()
    assert "Keep Acme Books&#x27;s value</option>" in listing and "<span>Acme Books</span>" in listing


def test_keep_host_and_keep_quickbooks_actions(org, operator, operator_client, make_conflict) -> None:
    mine, theirs = make_conflict(org), make_conflict(org, host="h2@example.com", qbo="q2@example.com")
    QueueItem.objects.all().delete()  # the real-time pushes of the new customers
    run_action(operator_client, "conflict", "keep_host", [mine.pk])
    run_action(operator_client, "conflict", "keep_quickbooks", [theirs.pk])
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, mine.winner, mine.resolved_value, mine.resolved_by) == ("resolved", "host",
                                                                                "host@example.com", operator)
    assert host_email(mine) == "host@example.com"
    assert (theirs.state, theirs.winner, theirs.resolved_value) == ("resolved", "qbo", "q2@example.com")
    assert host_email(theirs) == "q2@example.com"
    # Keeping the app's value queues its push to QuickBooks; keeping QuickBooks' does not.
    assert QueueItem.objects.filter(object_id=mine.mapping.object_id, operation="push").exists()
    assert not QueueItem.objects.filter(object_id=theirs.mapping.object_id, operation="push").exists()


def test_edit_then_keep(org, admin_client, make_conflict) -> None:
    conflict = make_conflict(org)
    page = admin_client.get(url("conflict", "resolve", conflict.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Keep this value" in html and "base@example.com" in html and "qbo@example.com" in html
    done = admin_client.post(url("conflict", "resolve", conflict.pk), {"keep": "value",
                                                                      "value": "edited@example.com"})
    assert done.status_code == 302 and done["Location"] == url("conflict", "change", conflict.pk)
    conflict.refresh_from_db()
    assert conflict.state == "resolved" and conflict.resolved_value == "edited@example.com"
    assert host_email(conflict) == "edited@example.com"
    again = admin_client.post(url("conflict", "resolve", conflict.pk), {"keep": "qbo"}, follow=True)
    assert "already resolved" in again.content.decode()


def test_edit_then_keep_of_a_number_takes_json(org, admin_client, make_conflict) -> None:
    conflict = make_conflict(org)
    Conflict.objects.filter(pk=conflict.pk).update(field="balance", base_value=1, host_value=2, qbo_value=3)
    bad = admin_client.post(url("conflict", "resolve", conflict.pk), {"keep": "value", "value": "two"})
    assert bad.status_code == 200 and "Not valid JSON" in bad.content.decode()
    conflict.refresh_from_db()
    assert conflict.state == "open"


def test_conflicts_of_other_organizations_are_out_of_reach(org, other_org, operator_client, viewer_client,
                                                           make_conflict) -> None:
    mine, theirs = make_conflict(org), make_conflict(other_org)
    assert list(operator_client.get(url("conflict")).context["cl"].result_list) == [mine]
    assert operator_client.get(url("conflict", "change", theirs.pk)).status_code == 302
    assert operator_client.get(url("conflict", "resolve", theirs.pk)).status_code == 404
    assert operator_client.post(url("conflict", "resolve", theirs.pk), {"keep": "qbo"}).status_code == 404
    run_action(operator_client, "conflict", "keep_quickbooks", [theirs.pk])
    theirs.refresh_from_db()
    assert theirs.state == "open"
    assert action_choices(viewer_client, "conflict") == set()
    assert viewer_client.post(url("conflict", "resolve", mine.pk), {"keep": "qbo"}).status_code == 403
    assert url("conflict", "resolve", mine.pk) not in viewer_client.get(
        url("conflict", "change", mine.pk)).content.decode()
    mine.refresh_from_db()
    assert mine.state == "open"


# --- log and cursors -----------------------------------------------------------------------------------------------


def test_sync_log_is_read_only_and_append_only(org, other_org, admin_client, operator_client) -> None:
    mine = SyncLog.objects.create(organization=org, event="pushed", message="Pushed customer 1")
    theirs = SyncLog.objects.create(organization=other_org, event="pushed", message="Pushed customer 2")
    system = SyncLog.objects.create(organization=None, event="reaped", message="Reaped 1 item")
    assert {r.pk for r in admin_client.get(url("synclog")).context["cl"].result_list} == {mine.pk, theirs.pk,
                                                                                           system.pk}
    assert [r.pk for r in operator_client.get(url("synclog")).context["cl"].result_list] == [mine.pk]
    assert action_choices(admin_client, "synclog") == set()  # not even delete_selected
    assert admin_client.get(url("synclog", "add")).status_code == 403
    assert admin_client.post(url("synclog", "change", mine.pk), {"message": "rewritten"}).status_code == 403
    assert admin_client.post(url("synclog", "delete", mine.pk), {"post": "yes"}).status_code == 403
    page = admin_client.get(url("synclog", "change", mine.pk))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert SyncLog.objects.get(pk=mine.pk).message == "Pushed customer 1"
    assert operator_client.get(url("synclog", "change", theirs.pk)).status_code == 302


def test_pull_cursors_are_read_only(org, other_org, admin_client, operator_client) -> None:
    mine = PullCursor.objects.create(organization=org, entity_type="Customer", changed_since=timezone.now())
    PullCursor.objects.create(organization=other_org, entity_type="Customer")
    assert [c.pk for c in operator_client.get(url("pullcursor")).context["cl"].result_list] == [mine.pk]
    assert admin_client.get(url("pullcursor", "add")).status_code == 403
    assert admin_client.post(url("pullcursor", "change", mine.pk), {"entity_type": "Item"}).status_code == 403
    assert admin_client.post(url("pullcursor", "delete", mine.pk), {"post": "yes"}).status_code == 403


def test_staff_without_a_view_permission_cannot_open_the_pages(org) -> None:
    nobody = MembershipFactory(organization=org, user=UserFactory(username="nobody")).user
    client = staff_client(nobody)
    for model in ("qboconnection", "syncjob", "queueitem", "conflict", "synclog", "pullcursor"):
        assert client.get(url(model)).status_code == 403
    grant(nobody, ["qbo_sync.view_queueitem"])
    assert client.get(url("queueitem")).status_code == 200
    assert Permission.objects.filter(user=nobody).count() == 1


def test_no_resolver_means_staff_see_nothing(org, operator_client, settings) -> None:
    item(org, "failed")
    settings.QBO_SYNC = {**settings.QBO_SYNC, "ORGANIZATION_RESOLVER": None}
    assert list(operator_client.get(url("queueitem")).context["cl"].result_list) == []


def test_pause_and_resume_actions_take_the_reason_from_the_action_bar(other_org, admin_client) -> None:
    conn = QboConnection.objects.get(organization=other_org)
    refused = run_action(admin_client, "qboconnection", "pause_selected", [conn.pk], reason="  ")
    assert refused.status_code == 302
    conn.refresh_from_db()
    assert conn.paused_at is None
    run_action(admin_client, "qboconnection", "pause_selected", [conn.pk], reason="month-end close")
    conn.refresh_from_db()
    assert conn.paused_at is not None and conn.pause_reason == "month-end close"
    assert "Paused: month-end close" in admin_client.get(url("qboconnection")).content.decode()
    run_action(admin_client, "qboconnection", "resume_selected", [conn.pk])
    conn.refresh_from_db()
    assert conn.paused_at is None and conn.pause_reason == ""
