"""The main job: a whole sync story on the embedded default (SQLite + the bundled QBO sandbox).

1. start the bundled QuickBooks sandbox with a company that already has an accountant's customers, items,
   invoices and payments, and automated sales tax turned on (as most US companies have it);
2. create the demo organization's own data in Batchly (customers in California and Arizona, one tax-exempt;
   taxable and non-taxable items; thousands of invoices);
3. connect through the real OAuth flow, import (linking records that exist on both sides), push everything,
   with progress on screen;
4. the accountant edits a customer and records payments in QuickBooks while Batchly edits the same customer;
5. pull: the edits merge, a conflict is recorded, payment states come back onto the invoices;
6. reconcile: both sides' books compared (totals, QuickBooks' sales tax, balances), ending in "books match";
7. a summary table of what moved in each direction and how long it took.

The database and the sandbox state (``var/sandbox-state.json``) are left in place for the admin to show.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from batchly.models import Customer, Invoice, InvoiceLine, Item, Membership, Organization, SalesOrder
from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet
from qbo_sync.conf import qbo_settings
from qbo_sync.models import Conflict, EntityMapping, QueueItem, SyncJob
from qbo_sync.sandbox import Sandbox
from qbo_sync.services import jobs
from qbo_sync.services.drain import drain
from qbo_sync.services.progress import job_progress
from qbo_sync.services.reconcile import reconcile

STATE_FILE = Path(settings.BASE_DIR) / "var" / "sandbox-state.json"
DEMO_SLUG = "demo"
SANDBOX_PORT = 8765


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Demo:
    def __init__(self, *, invoices: int, customers: int, items: int, time_scale: float,
                 write: Callable[[str], None]) -> None:
        self.n_invoices, self.n_customers, self.n_items = invoices, customers, items
        self.time_scale = time_scale
        self.write = write
        self.timings: list[tuple[str, float]] = []
        self.rng = random.Random(7)

    # --- steps --------------------------------------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        logging.getLogger("qbo_sync").setLevel(logging.WARNING)  # the demo prints its own progress
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.unlink(missing_ok=True)
        port = SANDBOX_PORT if _port_free(SANDBOX_PORT) else 0
        # The bundled sandbox checks the app's credentials like Intuit does; the demo brings its own pair.
        settings.QBO_SYNC = {**settings.QBO_SYNC, "CLIENT_ID": settings.QBO_SYNC["CLIENT_ID"] or "batchly-demo",
                             "CLIENT_SECRET": settings.QBO_SYNC["CLIENT_SECRET"] or "batchly-demo-secret"}
        sandbox = Sandbox(port=port, time_scale=self.time_scale, state_file=str(STATE_FILE),
                          client_id=settings.QBO_SYNC["CLIENT_ID"], client_secret=settings.QBO_SYNC["CLIENT_SECRET"])
        sandbox.start()
        try:
            self.configure(sandbox)
            realm = sandbox.create_realm(starter_data=True)
            sandbox.default_realm = realm
            # The accountant's company computes sales tax itself (CA 8 %, AZ 7.1 % + 2 %): Batchly sends each line's
            # taxability and shows what QuickBooks charged.
            sandbox.configure(realm, tax_model="automated")
            self.step("Batchly data", self.create_batchly_data)
            self.step("Connect (OAuth)", lambda: call_command("qbo_sync", "connect", "--org", DEMO_SLUG,
                                                              stdout=_Quiet(self.write)))
            self.step("Import from QuickBooks", lambda: self.run_jobs(jobs.start_import(self.org.pk)))
            for entity in ("Customer", "Item", "Invoice"):
                self.step(f"Push {entity.lower()}s", lambda e=entity: self.run_jobs(
                    [jobs.start_push(self.org.pk, e, jobs.unsynced_ids(self.org.pk, e) if e != "Invoice" else None)]))
            self.step("Accountant works in QuickBooks", lambda: self.accountant_works(sandbox, realm))
            self.step("Pull changes", lambda: self.run_jobs([
                jobs.start_pull(self.org.pk, "Customer"), jobs.start_pull(self.org.pk, "Item"),
                jobs.start_pull(self.org.pk, "Payment")]))
            self.step("Reconcile", self.reconcile)
            sandbox.save_state()
        finally:
            sandbox.stop()
        self.summary(time.monotonic() - started, sandbox, realm)

    def configure(self, sandbox: Sandbox) -> None:
        settings.QBO_SYNC = {**settings.QBO_SYNC, "ENVIRONMENT": "local", "API_BASE_URL": sandbox.base_url,
                             "AUTH_BASE_URL": sandbox.base_url}
        settings.QBO_SYNC = {**settings.QBO_SYNC, "TIME_SCALE": self.time_scale,
                             "CRITICAL_FIELDS": {"Customer": ["email"]}, "PUSH_DELAY_SECONDS": 0}
        qbo_settings.reload()
        self.write(f"QuickBooks sandbox running at {sandbox.base_url} (time scale {self.time_scale:g}: one QBO "
                   f"minute of limits passes in {60 / self.time_scale:.1f} s).")

    def step(self, name: str, func: Callable[[], Any]) -> None:
        self.write(f"\n== {name} ==")
        began = time.monotonic()
        func()
        self.timings.append((name, time.monotonic() - began))

    def create_batchly_data(self) -> None:
        self.remove_previous_run()
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(username="admin", defaults={
            "is_staff": True, "is_superuser": True, "email": "admin@example.com"})
        if created:
            admin.set_password("admin")
            admin.save()
        with transaction.atomic():
            self.org = Organization.objects.create(name="Batchly Demo Co", slug=DEMO_SLUG)
            Membership.objects.create(user=admin, organization=self.org, role=Membership.Role.OWNER)
            customers = [Customer(organization=self.org, display_name="Amy's Bird Sanctuary",
                                  email="birds@intuit.com", company_name="Amy's Bird Sanctuary")]
            customers += [Customer(organization=self.org, display_name=f"Demo Customer {n:04d}",
                                   company_name=f"Demo Customer {n:04d} LLC", given_name="Pat",
                                   family_name=f"Example{n}", email=f"customer{n}@example.com",
                                   # every fifth in Tucson (AZ's two rates), one school that is tax-exempt
                                   bill_line1=f"{n} Market St", bill_city="Tucson" if n % 5 == 0 else "San Francisco",
                                   bill_region="AZ" if n % 5 == 0 else "CA",
                                   bill_postal_code="85701" if n % 5 == 0 else "94105", bill_country="USA",
                                   taxable=n != 3)
                          for n in range(1, self.n_customers)]
            Customer.objects.bulk_create(customers)
            # Design is a service (not taxable); every fourth demo item too.
            items = [Item(organization=self.org, name="Design", description="Custom design", unit_price=Decimal("75"),
                          taxable=False)]
            items += [Item(organization=self.org, name=f"Demo Item {n:03d}", sku=f"DEMO-{n:03d}",
                           description=f"Demo item {n}", unit_price=Decimal(self.rng.randint(5, 200)) + Decimal("0.50"),
                           taxable=n % 4 != 0)
                      for n in range(1, self.n_items)]
            Item.objects.bulk_create(items)
            customers = list(Customer.objects.filter(organization=self.org))
            items = list(Item.objects.filter(organization=self.org))
            today = timezone.localdate()
            invoices = []
            for n in range(self.n_invoices):
                issue = today - dt.timedelta(days=self.rng.randint(0, 60))
                invoices.append(Invoice(organization=self.org, number=f"INV-{10001 + n}",
                                        customer=self.rng.choice(customers), issue_date=issue,
                                        due_date=issue + dt.timedelta(days=30)))
            Invoice.objects.bulk_create(invoices, batch_size=500)
            lines = []
            saved = list(Invoice.objects.filter(organization=self.org))
            for invoice in saved:
                total = Decimal("0.00")
                for position in range(self.rng.randint(1, 3)):
                    item = self.rng.choice(items)
                    qty = Decimal(self.rng.randint(1, 10))
                    line = InvoiceLine(invoice=invoice, item=item, description=item.description, quantity=qty,
                                       unit_price=item.unit_price, position=position)
                    lines.append(line)
                    total += line.amount
                invoice.subtotal = invoice.total = invoice.amount_due = total
            InvoiceLine.objects.bulk_create(lines, batch_size=1000)
            Invoice.objects.bulk_update(saved, ["subtotal", "total", "amount_due"], batch_size=500)
        self.write(f"Batchly: {len(customers)} customers, {len(items)} items, {self.n_invoices} invoices "
                   f"(log in to the admin as admin / admin).")

    @staticmethod
    def remove_previous_run() -> None:
        """A second `make demo` starts over: the previous demo organization goes, with everything it had."""
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is None:
            return
        with transaction.atomic():
            InvoiceLine.objects.filter(invoice__organization=org).delete()
            Invoice.objects.filter(organization=org).update(replaces=None)
            Invoice.objects.filter(organization=org).delete()
            SalesOrder.objects.filter(organization=org).delete()
            Customer.objects.filter(organization=org).delete()
            Item.objects.filter(organization=org).delete()
            org.delete()

    def run_jobs(self, started: list[SyncJob]) -> None:
        ids = [j.pk for j in started]
        last = 0.0

        def show(*_: Any) -> None:
            nonlocal last
            if time.monotonic() - last < 1.0:
                return
            last = time.monotonic()
            for job in SyncJob.objects.filter(pk__in=ids):
                p = job_progress(job)
                if job.total > 1:
                    self.write(f"  {job.description}: {p.done}/{p.total} "
                               f"({p.percent:.0f}%), {p.rate_per_minute or 0:,.0f}/min, "
                               f"ETA {p.eta_seconds if p.eta_seconds is not None else '-'} s")

        while SyncJob.objects.filter(pk__in=ids, state__in=["pending", "running"]).exists():
            report = drain(budget_seconds=60, organization_id=self.org.pk, on_chunk=show)
            if not report.claimed:
                nxt = (QueueItem.objects.filter(job_id__in=ids, status="pending").order_by("next_attempt_at")
                       .values_list("next_attempt_at", flat=True).first())
                if nxt is None:
                    break
                time.sleep(min(2.0, max(0.05, (nxt - timezone.now()).total_seconds())))
        for job in SyncJob.objects.filter(pk__in=ids):
            p = job_progress(job)
            self.write(f"  {job.description}: {job.state} — {p.counts.completed} done, {p.counts.failed} failed, "
                       f"{p.counts.dead} dead")

    def accountant_works(self, sandbox: Sandbox, realm: str) -> None:
        tokens = sandbox.issue_tokens(realm, client_id="accountant")
        client = QboClient(realm, api_base_url=sandbox.base_url, tokens=InMemoryTokenProvider(TokenSet(
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            expires_at=timezone.now() + dt.timedelta(seconds=float(tokens["expires_in"]) / self.time_scale))),
            throttle=InProcessThrottle(time_scale=self.time_scale))
        mappings = EntityMapping.objects.filter(organization_id=self.org.pk)
        # Batchly edits a customer's company name and email...
        target = Customer.objects.get(organization=self.org, display_name="Demo Customer 0001")
        target.company_name = "Edited in Batchly Inc"
        target.email = "from-batchly@example.com"
        target.save()
        QueueItem.objects.filter(organization_id=self.org.pk, status="pending", job__isnull=True).delete()
        # ...then the accountant edits the same fields in QuickBooks (newer: QuickBooks wins the name; the email is
        # critical in this demo, so it waits for a person), plus the phone of another customer.
        qbo_id = mappings.get(entity_type="Customer", object_id=str(target.pk)).qbo_id
        current = client.read("Customer", qbo_id)
        client.update("Customer", {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "CompanyName": "Edited by the accountant Inc",
                                   "PrimaryEmailAddr": {"Address": "from-qbo@example.com"}}, request_id="demo-edit-1")
        other = mappings.filter(entity_type="Customer").exclude(qbo_id=qbo_id).order_by("pk")[1]
        current = client.read("Customer", other.qbo_id)
        client.update("Customer", {"Id": other.qbo_id, "SyncToken": current["SyncToken"], "sparse": True,
                                   "PrimaryPhone": {"FreeFormNumber": "(415) 555-0199"}}, request_id="demo-edit-2")
        # Payments: some invoices paid in full, some in part.
        invoices = list(mappings.filter(entity_type="Invoice").order_by("pk").values_list("qbo_id", flat=True)[:40])
        paid = partial = 0
        for n, invoice_id in enumerate(invoices):
            invoice = client.read("Invoice", invoice_id)
            amount = Decimal(str(invoice["TotalAmt"]))
            if n % 2:
                amount = (amount / 2).quantize(Decimal("0.01"))
                partial += 1
            else:
                paid += 1
            client.create("Payment", {"CustomerRef": invoice["CustomerRef"], "TotalAmt": float(amount),
                                      "Line": [{"Amount": float(amount), "LinkedTxn": [
                                          {"TxnId": invoice_id, "TxnType": "Invoice"}]}]},
                          request_id=f"demo-pay-{invoice_id}")
        client.close()
        self.write(f"The accountant edited 2 customers and recorded {paid} full and {partial} partial payments; "
                   "Batchly edited one of the same customers.")

    def reconcile(self) -> None:
        report = reconcile(self.org.pk)
        totals = report.totals.get("Invoice", {})
        self.write(f"  invoices: Batchly total {totals.get('host_total')} / QuickBooks {totals.get('qbo_total')} "
                   f"(sales tax included); due {totals.get('host_due')} / balance {totals.get('qbo_balance')}")
        for line in report.held:
            self.write(f"  {line}")
        for line in report.lines():
            self.write(f"  {line}")
        self.write("  Books match." if report.books_match else f"  Books differ: {len(report.drift)} drift line(s).")

    def summary(self, seconds: float, sandbox: Sandbox, realm: str) -> None:
        m = EntityMapping.objects.filter(organization_id=self.org.pk)
        invoices = Invoice.objects.filter(organization=self.org)
        rows = [
            ("Batchly → QuickBooks", "customers sent",
             m.filter(entity_type="Customer", last_pushed_at__isnull=False).count()),
            ("Batchly → QuickBooks", "items sent", m.filter(entity_type="Item", last_pushed_at__isnull=False).count()),
            ("Batchly → QuickBooks", "invoices created",
             m.filter(entity_type="Invoice", qbo_id__isnull=False).count()),
            ("QuickBooks → Batchly", "customers imported or linked",
             m.filter(entity_type="Customer", last_pushed_at__isnull=True).count()),
            ("QuickBooks → Batchly", "items imported or linked",
             m.filter(entity_type="Item", last_pushed_at__isnull=True).count()),
            ("QuickBooks → Batchly", "invoices taxed by QuickBooks", invoices.filter(tax_amount__gt=0).count()),
            ("QuickBooks → Batchly", "sales tax charged", sum(invoices.values_list("tax_amount", flat=True),
                                                               Decimal("0.00"))),
            ("QuickBooks → Batchly", "invoices paid", invoices.filter(payment_status="paid").count()),
            ("QuickBooks → Batchly", "invoices partly paid", invoices.filter(payment_status="partial").count()),
            ("both", "conflicts resolved by policy", Conflict.objects.filter(
                organization_id=self.org.pk, state="auto_resolved").count()),
            ("both", "conflicts waiting for a person", Conflict.objects.filter(
                organization_id=self.org.pk, state="open").count()),
            ("queue", "failed or dead items", QueueItem.objects.filter(
                organization_id=self.org.pk, status__in=["failed", "dead"]).count()),
        ]
        self.write("\n== Summary ==")
        self.write(f"{'direction':<22} {'what':<32} {'count':>7}")
        for direction, what, count in rows:
            self.write(f"{direction:<22} {what:<32} {count:>7}")
        stats = sandbox.stats(realm)
        self.write(f"\nQuickBooks sandbox counters: {_counters(stats)}")
        self.write(f"{'step':<34} {'seconds':>8}")
        for name, secs in self.timings:
            self.write(f"{name:<34} {secs:>8.1f}")
        self.write(f"{'total':<34} {seconds:>8.1f}")
        self.write(f"\nThe database and the sandbox state ({STATE_FILE.relative_to(settings.BASE_DIR)}) are kept: run "
                   "`python manage.py runserver` and open http://127.0.0.1:8000/admin/ (admin / admin).")


def _counters(stats: dict[str, Any]) -> str:
    requests = stats.get("requests", {})
    total = sum(requests.values()) if isinstance(requests, dict) else requests
    throttled = stats.get("throttled", {})
    n429 = sum(throttled.values()) if isinstance(throttled, dict) else throttled
    return f"{total} requests ({', '.join(f'{k} {v}' for k, v in sorted(requests.items()))}), {n429} answered 429"


class _Quiet:
    """Indent what a nested command prints."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def write(self, text: str) -> None:
        for line in text.rstrip("\n").splitlines():
            self._write(f"  {line}")

    def flush(self) -> None:
        pass
