"""The live progress page in a real headless chromium: while a background worker drains a job a few items at a
time, the page's numbers change on their own and reach 100%."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from qbo_sync.models import QboConnection, SyncJob
from qbo_sync.services import jobs
from qbo_sync.services.drain import drain
from qbo_sync.services.outcomes import Outcome
from tests.factories import CustomerFactory, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ITEMS = 24
CHUNK = 3
SECONDS_PER_CHUNK = 0.6


def slow_processor(organization_id, items):
    """Completes every item of the chunk, slowly (a stand-in for QuickBooks: nothing leaves the machine)."""
    time.sleep(SECONDS_PER_CHUNK)
    return {item.pk: Outcome.completed() for item in items}


@pytest.fixture
def slow_queue(settings):
    settings.QBO_SYNC = {**settings.QBO_SYNC, "CHUNK_SIZE": CHUNK, "PUSH_DELAY_SECONDS": 0,
                         "PROCESSOR": slow_processor}


class Worker(threading.Thread):
    """A worker draining the queue in the background, as django-q2 would.

    On SQLite the test database lives in memory; a second connection to it would meet shared-cache table locks, so
    the worker borrows the connection the live server thread was given (the test's own). Other databases get a
    connection of its own.
    """

    def __init__(self, live_server) -> None:
        super().__init__(daemon=True)
        self.error: BaseException | None = None
        self.shared = live_server.thread.connections_override.get("default")
        if self.shared is not None:
            self.shared.inc_thread_sharing()

    def run(self) -> None:
        if self.shared is not None:
            connections["default"] = self.shared
        try:
            drain(budget_seconds=120)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            if self.shared is None:
                connections.close_all()
            else:
                self.shared.dec_thread_sharing()


def test_progress_page_follows_a_running_job(live_server, browser, slow_queue):
    org = OrganizationFactory(slug="e2e", name="E2E Org")
    QboConnection.objects.create(organization=org, realm_id="7001", environment="local",
                                 status=QboConnection.Status.CONNECTED, connected_at=timezone.now())
    user = MembershipFactory(organization=org, user=UserFactory(username="operator")).user
    customers = CustomerFactory.create_batch(ITEMS, organization=org)
    job = jobs.start_push(org.pk, "Customer", [c.pk for c in customers], user=user)

    login = Client()
    login.force_login(user)
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": login.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    api_statuses: list[int] = []
    page.on("response", lambda r: api_statuses.append(r.status) if "/api/qbo/jobs/" in r.url else None)
    try:
        page.goto(f"{live_server.url}/qbo/jobs/{job.pk}/progress/")
        page.wait_for_function("document.getElementById('polls').textContent !== '0'")
        assert float(page.text_content("#percent")) == 0
        assert page.text_content("#count-pending") == str(ITEMS)

        worker = Worker(live_server)
        worker.start()
        seen: list[tuple[float, int]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            percent = float(page.text_content("#percent") or 0)
            completed = int(page.text_content("#count-completed") or 0)
            if not seen or seen[-1] != (percent, completed):
                seen.append((percent, completed))
            if percent == 100.0 and page.text_content("#state") == "Completed":
                break
            time.sleep(0.2)
        worker.join(timeout=30)
        assert worker.error is None, worker.error

        percents = [p for p, _ in seen]
        assert percents[-1] == 100.0, seen
        assert len({p for p in percents if 0 < p < 100}) >= 2, f"the page should show progress in between: {seen}"
        assert percents == sorted(percents), seen
        assert page.text_content("#count-completed") == str(ITEMS)
        assert page.text_content("#count-pending") == "0"
        assert page.text_content("#eta") == "done"
        assert float(page.text_content("#rate")) > 0
        assert page.is_hidden("#cancel") and page.is_hidden("#failures")
        assert SyncJob.objects.get(pk=job.pk).state == SyncJob.State.COMPLETED
        # It polled about once a second, and stopped once the job finished.
        polls = int(page.text_content("#polls"))
        assert polls >= 3 and set(api_statuses) <= {200, 304}
        time.sleep(2.5)
        assert int(page.text_content("#polls")) == polls
        print(f"\nprogress seen (percent, completed): {seen}; polls: {polls}; "
              f"304s: {page.text_content('#not-modified')}")
    finally:
        context.close()
