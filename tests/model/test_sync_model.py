"""The model-based sync test: random histories of both sides' edits, engine runs and faults, judged by invariants.

A hypothesis ``RuleBasedStateMachine`` drives the REAL engine (save signals, enqueue, claim/drain, pull, the
webhooks view, conflict resolution, reconnect) against the REAL sandbox over HTTP. Every history gets a fresh
organization connected to a fresh realm; one *bystander* organization, connected to its own realm and synced once
at the start, must never be written to.

At every quiescent point (faults off, the queue drained, customers, items and payments pulled, drained again) the
invariants hold:

* every linked customer and item agrees with QuickBooks on every synced field, or exactly one open conflict names
  that field with both sides' current values (and QuickBooks-owned fields never wait for a person);
* no QuickBooks record exists twice (one host row per QBO id, one QBO invoice per host number, no payment the
  accountant did not record), and every record in the history's realm is the accountant's or linked to a host row;
* every QuickBooks-owned change (item price and active, invoice payment state) is in the host;
* no write reached the bystander's realm;
* ``reconcile()`` reports the books match (it leaves fields covered by open conflicts out).

Profiles (``QBO_MODEL_PROFILE``): ``ci`` (default; a few dozen derandomized histories) and ``soak`` (thousands,
``make soak``, seed printed). ``QBO_MODEL_SUMMARY=path`` writes a JSON summary (histories, steps, faults,
violations). A failure prints the shrunk history as rule calls; keep it as an example test below.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import time
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from batchly.models import Customer, Invoice, InvoiceLine, Item
from qbo_sync.adapters import get_adapter
from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet
from qbo_sync.exceptions import QboApiError
from qbo_sync.mapping import get_mapper
from qbo_sync.mapping.base import Policy, values_equal
from qbo_sync.models import Conflict, EntityMapping, QboConnection, QueueItem
from qbo_sync.services import conflicts as conflict_service
from qbo_sync.services.connect import complete_connect, start_connect
from qbo_sync.services.drain import drain
from qbo_sync.services.jobs import start_push, start_sync
from qbo_sync.services.process import process_items
from qbo_sync.services.queue import apply_outcomes, claim_chunk, create_job, start_pull
from qbo_sync.services.reconcile import reconcile
from qbo_sync.webhooks.verify import signature
from tests.factories import CustomerFactory, ItemFactory, OrganizationFactory
from tests.integration.conftest import connect_org

pytestmark = pytest.mark.django_db(transaction=True)

VERIFIER = "model-test-verifier"
CRITICAL = {"Customer": ["email"]}
KEEP_HOST = "host" if "host" in conflict_service.KEEP_CHOICES else "batchly"

# Defects of issue 11 being fixed by others. A rule path that reaches one is switched off here ONLY until the fix is
# on main; then the flag goes and the path runs (the invariants would catch the defect).
#: (1) a held critical field is sent by the next push of the same customer.
HELD_FIELD_FIX_LANDED = True
#: (3) two queue items for the same never-synced row crash the chunk (IntegrityError uniq_mapping_host_row).
DUPLICATE_MAPPING_FIX_LANDED = True
#: Found by the soak, not fixed yet (reported): the host edits a held field while its conflict is open, then both
#: sides agree or the host moves on, and the open conflict keeps showing the host's old value. Until a fix lands,
#: the host does not edit a field that is held.
HELD_HOST_EDIT_FIX_LANDED = True
#: (4) links are not bound to the realm: a reconnect to another company reuses the old company's ids.
REALM_BOUND_LINKS_LANDED = True

settings.register_profile(
    "ci", max_examples=int(os.environ.get("QBO_MODEL_EXAMPLES", 25)), stateful_step_count=20, deadline=None,
    derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
settings.register_profile(
    "soak", max_examples=int(os.environ.get("QBO_MODEL_EXAMPLES", 2000)), stateful_step_count=25, deadline=None,
    database=None, print_blob=True, phases=[Phase.explicit, Phase.generate, Phase.shrink, Phase.explain],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("QBO_MODEL_PROFILE", "ci")
if os.environ.get("QBO_MODEL_SHRINK") == "0":  # while developing: report the first failure as found
    settings.register_profile("dev", settings.get_profile(PROFILE), phases=[Phase.explicit, Phase.generate])
    PROFILE = "dev"

#: Figures for the soak summary (module-wide: one pytest process runs one profile).
STATS: Counter = Counter()
FAULTS: Counter = Counter()
SANDBOX: Counter = Counter()  # what the sandbox actually served (its per-realm counters)
_names = itertools.count(1)


def _uid() -> int:
    return next(_names)


class Accountant:
    """A person editing QuickBooks directly, through the API with their own app's tokens."""

    def __init__(self, sandbox: Any, realm: str) -> None:
        self.sandbox, self.realm = sandbox, realm
        self.client: QboClient | None = None
        self.created: dict[str, set[str]] = {"Customer": set(), "Item": set(), "Payment": set()}
        self.payments: dict[str, str] = {}  # payment id -> invoice id (live ones)

    def api(self) -> QboClient:
        if self.client is None:
            tokens = self.sandbox.issue_tokens(self.realm, client_id="accountant-app")
            token_set = TokenSet(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
                                 expires_at=timezone.now() + dt.timedelta(hours=1))
            self.client = QboClient(self.realm, api_base_url=self.sandbox.base_url,
                                    tokens=InMemoryTokenProvider(token_set),
                                    throttle=InProcessThrottle(100_000, 50, 100_000, requests_per_second=None),
                                    backoff_base=0.001, backoff_cap=0.01)
        return self.client

    def forget_tokens(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    def update(self, entity: str, qbo_id: str, **fields: Any) -> dict:
        current = self.api().read(entity, qbo_id)
        return self.api().update(entity, {"Id": qbo_id, "SyncToken": current["SyncToken"], "sparse": True, **fields},
                                 request_id=f"acct-{entity}-{qbo_id}-{current['SyncToken']}-{_uid()}")


class SyncModel(RuleBasedStateMachine):
    """One history. Class attributes are set by the test function (the sandbox and the bystander)."""

    sandbox: Any = None
    bystander: dict[str, Any] = {}

    def __init__(self) -> None:
        super().__init__()
        STATS["histories"] += 1
        self.realm = self.sandbox.create_realm()
        self.conn = connect_org(self.sandbox, self.realm)
        self.org = self.conn.organization
        self.acct = Accountant(self.sandbox, self.realm)
        self.web = Client()
        self.faulty = False
        self.realms_used = {self.realm}
        self.former: dict[str, dict[str, str]] = {}  # companies this organization left, as they were then

    # --- helpers --------------------------------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if not self.faulty:
                self.settle()
                self.check()
        finally:
            for realm in self.realms_used:
                served = self.sandbox.stats(realm)
                SANDBOX["429_served"] += served["throttled_total"]
                SANDBOX["5xx_served"] += sum(served["faults_injected"].values())
                SANDBOX["resets"] += served["resets"]
                SANDBOX["lost_responses"] += served["lost_responses"]
                SANDBOX["401_expired_token"] += served["auth_failures"]
                SANDBOX["requestid_replays"] += served["deduplicated"]
                SANDBOX["requests"] += served["requests_total"]
                self.sandbox.reset(realm)
            QueueItem.objects.filter(organization_id=self.org.pk).delete()
            if STATS["histories"] % 25 == 0:
                write_summary()  # a long soak shows its progress (and leaves figures if it is stopped)
            QboConnection.objects.filter(organization_id=self.org.pk).update(status=QboConnection.Status.DISCONNECTED)
            self.acct.forget_tokens()

    def customers(self) -> list[Customer]:
        return list(Customer.objects.filter(organization=self.org).order_by("pk"))

    def items(self) -> list[Item]:
        return list(Item.objects.filter(organization=self.org).order_by("pk"))

    def linked(self, entity: str) -> list[EntityMapping]:
        return list(EntityMapping.objects.filter(organization_id=self.org.pk, entity_type=entity,
                                                 realm_id=self.conn.realm_id, qbo_id__isnull=False).order_by("pk"))

    def run_queue(self) -> None:
        drain(budget_seconds=120, organization_id=self.org.pk)

    def faults_off(self) -> None:
        self.sandbox.reset(self.conn.realm_id)
        self.faulty = False

    def pull_all(self, full: bool = False) -> None:
        for entity in ("Customer", "Item", "Payment"):
            start_pull(self.org.pk, entity, full=full)
        self.run_queue()

    def settle(self) -> None:
        """A quiescent point: faults off, the queue drained, everything pulled, what the merges queued drained."""
        self.faults_off()
        for _round in range(4):
            self.run_queue()
            self.pull_all()
            if not QueueItem.objects.filter(organization_id=self.org.pk,
                                            status__in=["pending", "processing"]).exists():
                break

    def open_conflict(self) -> Conflict | None:
        return Conflict.objects.filter(organization_id=self.org.pk, state=Conflict.State.OPEN).order_by("pk").first()

    def field_held(self, customer: Customer, field: str) -> bool:
        return Conflict.objects.filter(organization_id=self.org.pk, state=Conflict.State.OPEN, field=field,
                                       mapping__object_id=str(customer.pk), entity_type="Customer").exists()

    def has_open_conflict(self, customer: Customer) -> bool:
        return Conflict.objects.filter(organization_id=self.org.pk, state=Conflict.State.OPEN,
                                       mapping__object_id=str(customer.pk), entity_type="Customer").exists()

    # --- the host side ----------------------------------------------------------------------------------------------

    @initialize(customers=st.integers(1, 2), items=st.integers(1, 2))
    def start_with_some_host_data(self, customers: int, items: int) -> None:
        for _ in range(customers):
            CustomerFactory(organization=self.org, display_name=f"Host Customer {_uid()}")
        for _ in range(items):
            ItemFactory(organization=self.org, name=f"Host Item {_uid()}")

    @rule()
    def host_creates_customer(self) -> None:
        CustomerFactory(organization=self.org, display_name=f"Host Customer {_uid()}")

    @rule(i=st.integers(0, 9), field=st.sampled_from(["company_name", "phone", "email", "bill_city"]),
          value=st.sampled_from(["a", "b", "c"]))
    def host_edits_customer(self, i: int, field: str, value: str) -> None:
        rows = self.customers()
        if not rows:
            return
        customer = rows[i % len(rows)]
        if not HELD_FIELD_FIX_LANDED and self.has_open_conflict(customer):
            return  # defect 1 (held field pushed): enabled once its fix is on main
        if not HELD_HOST_EDIT_FIX_LANDED and self.field_held(customer, field):
            return
        text = {"company_name": f"Host Co {value}", "phone": f"(555) 100-000{ord(value) % 10}",
                "email": f"host-{value}@example.com", "bill_city": f"Hostville {value}"}[field]
        setattr(customer, field, text)
        customer.save()

    @rule(i=st.integers(0, 9), active=st.booleans())
    def host_sets_customer_active(self, i: int, active: bool) -> None:
        rows = self.customers()
        if rows:
            customer = rows[i % len(rows)]
            if not HELD_FIELD_FIX_LANDED and self.has_open_conflict(customer):
                return
            customer.active = active
            customer.save()

    @rule()
    def host_creates_item(self) -> None:
        ItemFactory(organization=self.org, name=f"Host Item {_uid()}")

    @rule(i=st.integers(0, 9), field=st.sampled_from(["description", "unit_price", "sku", "active"]),
          value=st.sampled_from(["a", "b"]))
    def host_edits_item(self, i: int, field: str, value: str) -> None:
        rows = self.items()
        if not rows:
            return
        item = rows[i % len(rows)]
        new = {"description": f"Host text {value}", "unit_price": Decimal("30.00") if value == "a" else
               Decimal("31.50"), "sku": f"HSKU-{value}-{item.pk}", "active": value == "a"}[field]
        setattr(item, field, new)
        item.save()

    @rule(customer=st.integers(0, 9), lines=st.integers(1, 2), send=st.booleans())
    def host_creates_invoice(self, customer: int, lines: int, send: bool) -> None:
        customers, items = self.customers(), self.items()
        if not customers or not items:
            return
        invoice = Invoice.objects.create(organization=self.org, number=Invoice.next_number(self.org.pk),
                                         customer=customers[customer % len(customers)],
                                         due_date=timezone.localdate() + dt.timedelta(days=30))
        for n in range(lines):
            item = items[(customer + n) % len(items)]
            InvoiceLine.objects.create(invoice=invoice, item=item, description=f"Line {n + 1}",
                                       quantity=Decimal(n + 2), unit_price=Decimal("10.25"), position=n)
        invoice.recalculate()
        if send:
            create_job(self.org.pk, "push", "Invoice", [invoice.pk], QueueItem.Operation.PUSH)

    @rule(i=st.integers(0, 9))
    def host_sends_invoice(self, i: int) -> None:
        drafts = list(Invoice.objects.filter(organization=self.org, status=Invoice.Status.DRAFT).order_by("pk"))
        if drafts:
            create_job(self.org.pk, "push", "Invoice", [drafts[i % len(drafts)].pk], QueueItem.Operation.PUSH)

    @rule(i=st.integers(0, 9))
    def host_voids_invoice(self, i: int) -> None:
        sent = list(Invoice.objects.filter(organization=self.org).exclude(status=Invoice.Status.VOID).order_by("pk"))
        if sent:
            sent[i % len(sent)].void()

    @rule(i=st.integers(0, 9))
    def host_corrects_invoice(self, i: int) -> None:
        sent = list(Invoice.objects.filter(organization=self.org, status=Invoice.Status.SENT).order_by("pk"))
        if sent:
            replacement = sent[i % len(sent)].correct()
            create_job(self.org.pk, "push", "Invoice", [replacement.pk], QueueItem.Operation.PUSH)

    # --- the accountant's side --------------------------------------------------------------------------------------

    @rule()
    def accountant_creates_customer(self) -> None:
        n = _uid()
        row = self.acct.api().create("Customer", {"DisplayName": f"QBO Customer {n}", "CompanyName": f"QCo {n}",
                                                  "PrimaryEmailAddr": {"Address": f"q{n}@example.com"}},
                                     request_id=f"acct-cc-{n}")
        self.acct.created["Customer"].add(str(row["Id"]))

    @rule()
    def the_same_customer_is_created_on_both_sides(self) -> None:
        n = _uid()
        row = self.acct.api().create("Customer", {"DisplayName": f"Twin {n}",
                                                  "PrimaryEmailAddr": {"Address": f"twin{n}@example.com"}},
                                     request_id=f"acct-twin-{n}")
        self.acct.created["Customer"].add(str(row["Id"]))
        CustomerFactory(organization=self.org, display_name=f"Twin {n}", email=f"TWIN{n}@example.com")

    @rule(i=st.integers(0, 9), field=st.sampled_from(["CompanyName", "PrimaryPhone", "PrimaryEmailAddr", "BillAddr"]),
          value=st.sampled_from(["x", "y", "c"]))
    def accountant_edits_customer(self, i: int, field: str, value: str) -> None:
        links = self.linked("Customer")
        if not links:
            return
        payload = {"CompanyName": f"Host Co {value}" if value == "c" else f"QBO Co {value}",
                   "PrimaryPhone": {"FreeFormNumber": f"(555) 200-000{ord(value) % 10}"},
                   "PrimaryEmailAddr": {"Address": f"{'host' if value == 'c' else 'qbo'}-{value}@example.com"},
                   "BillAddr": {"City": f"QBOville {value}"}}[field]
        self.acct.update("Customer", links[i % len(links)].qbo_id, **{field: payload})

    @rule(i=st.integers(0, 9), same=st.booleans())
    def both_sides_edit_the_critical_field(self, i: int, same: bool) -> None:
        """The accountant and the host change a customer's email (critical: a person decides) before any sync."""
        links = self.linked("Customer")
        if not links:
            return
        mapping = links[i % len(links)]
        customer = Customer.objects.get(pk=mapping.object_id)
        if not HELD_HOST_EDIT_FIX_LANDED and self.field_held(customer, "email"):
            return
        n = _uid()
        self.acct.update("Customer", mapping.qbo_id, PrimaryEmailAddr={"Address": f"both-{n}@example.com"})
        customer.email = f"both-{n}@example.com" if same else f"host-{n}@example.com"
        customer.save()

    @rule(i=st.integers(0, 9), active=st.booleans())
    def accountant_sets_customer_active(self, i: int, active: bool) -> None:
        links = self.linked("Customer")
        if links:
            self.acct.update("Customer", links[i % len(links)].qbo_id, Active=active)

    @rule()
    def accountant_creates_item(self) -> None:
        n = _uid()
        row = self.acct.api().create("Item", {"Name": f"QBO Item {n}", "Type": "Service", "UnitPrice": 7.5,
                                              "IncomeAccountRef": {"value": "1"}}, request_id=f"acct-ci-{n}")
        self.acct.created["Item"].add(str(row["Id"]))

    @rule(i=st.integers(0, 9), field=st.sampled_from(["UnitPrice", "Description", "Active"]),
          value=st.sampled_from([0, 1]))
    def accountant_edits_item(self, i: int, field: str, value: int) -> None:
        links = self.linked("Item")
        if not links:
            return
        new = {"UnitPrice": [41.25, 42.0][value], "Description": f"QBO text {value}", "Active": bool(value)}[field]
        self.acct.update("Item", links[i % len(links)].qbo_id, **{field: new})

    @rule(i=st.integers(0, 9), full=st.booleans())
    def accountant_records_payment(self, i: int, full: bool) -> None:
        links = self.linked("Invoice")
        if not links:
            return
        invoice = self.acct.api().read("Invoice", links[i % len(links)].qbo_id)
        balance = Decimal(str(invoice["Balance"]))
        if balance <= 0:
            return
        amount = balance if full else (balance / 2).quantize(Decimal("0.01"))
        n = _uid()
        try:
            payment = self.acct.api().create("Payment", {
                "CustomerRef": invoice["CustomerRef"], "TotalAmt": float(amount),
                "Line": [{"Amount": float(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]},
                request_id=f"acct-pay-{n}")
        except QboApiError:
            return  # QuickBooks refused the accountant (e.g. the customer was made inactive): nothing recorded
        self.acct.created["Payment"].add(str(payment["Id"]))
        self.acct.payments[str(payment["Id"])] = str(invoice["Id"])

    @rule(i=st.integers(0, 9))
    def accountant_voids_payment(self, i: int) -> None:
        live = sorted(self.acct.payments)
        if not live:
            return
        pid = live[i % len(live)]
        current = self.acct.api().read("Payment", pid)
        self.acct.api().void("Payment", pid, current["SyncToken"], request_id=f"acct-vpay-{pid}-{_uid()}")
        del self.acct.payments[pid]

    # --- the engine ---------------------------------------------------------------------------------------------------

    @rule()
    def worker_drains(self) -> None:
        self.run_queue()

    @rule(entity=st.sampled_from(["Customer", "Item", "Payment"]), full=st.booleans())
    def pull(self, entity: str, full: bool) -> None:
        start_pull(self.org.pk, entity, full=full)
        self.run_queue()

    @rule(entity=st.sampled_from(["Customer", "Item", "Invoice"]), duplicate=st.booleans(), reverse=st.booleans())
    def webhook_arrives(self, entity: str, duplicate: bool, reverse: bool) -> None:
        links = self.linked(entity)[-3:]
        if not links:
            return
        now = timezone.now()
        events = [{"name": entity, "id": m.qbo_id, "operation": "Update",
                   "lastUpdated": (now - dt.timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
                  for k, m in enumerate(links)]
        if reverse:
            events.reverse()
        body = json.dumps({"eventNotifications": [{"realmId": self.conn.realm_id,
                                                   "dataChangeEvent": {"entities": events}}]}).encode()
        for _ in range(2 if duplicate else 1):
            response = self.web.post("/qbo/webhooks/", data=body, content_type="application/json",
                                     HTTP_INTUIT_SIGNATURE=signature(body, VERIFIER))
            assert response.status_code == 200, response.content
        self.run_queue()

    @rule(keep=st.sampled_from([KEEP_HOST, "qbo", "value"]), value=st.sampled_from(["typed-1", "typed-2"]))
    def person_resolves_a_conflict(self, keep: str, value: str) -> None:
        conflict = self.open_conflict()
        if conflict is None:  # a pull may open one (edits of the critical field on both sides wait for it)
            start_pull(self.org.pk, "Customer")
            self.run_queue()
            conflict = self.open_conflict()
        if conflict is None:
            return
        typed = f"{value}@example.com" if conflict.field == "email" else value
        conflict_service.resolve_conflict(conflict, keep, value=typed if keep == "value" else None)
        STATS["resolved"] += 1

    @precondition(lambda self: DUPLICATE_MAPPING_FIX_LANDED)
    @rule()
    def operator_syncs_selected_customers(self) -> None:
        """"Sync selected" of every customer, while save-signal pushes may still be queued (defect 3's path)."""
        start_push(self.org.pk, "Customer", [c.pk for c in self.customers()])

    # --- faults -------------------------------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(["5xx", "lost_response", "429", "reset", "flaky"]))
    def worker_drains_while_quickbooks_fails(self, kind: str) -> None:
        # The sandbox draws its faults from the global random, which hypothesis seeds per history: a history's faults
        # replay exactly. "flaky" mixes them; the others fail every call (lost responses: every write, once).
        options = {"5xx": {"fault_rate": 1.0}, "lost_response": {"lost_response_rate": 1.0},
                   "429": {"rate_limit": 1}, "reset": {"reset_rate": 1.0},
                   "flaky": {"fault_rate": 0.3, "reset_rate": 0.2, "lost_response_rate": 0.5}}[kind]
        self.sandbox.configure(self.conn.realm_id, **options)
        self.faulty = True
        try:
            if not QueueItem.objects.filter(organization_id=self.org.pk, status="pending").exists():
                start_pull(self.org.pk, "Customer")  # so that the chunk has work to fail on
                customer = Customer.objects.filter(organization=self.org).order_by("pk").first()
                if customer is not None and not self.has_open_conflict(customer):
                    customer.phone = f"(555) 400-{_uid() % 10000:04d}"
                    customer.save()
            org, items = claim_chunk("model-faulty", organization_id=self.org.pk)
            if items:
                FAULTS[kind] += 1
                apply_outcomes(items, process_items(org, items))
        finally:
            self.faults_off()

    @rule(i=st.integers(0, 9))
    def push_meets_a_stale_synctoken(self, i: int) -> None:
        """The accountant edits a customer, the host edits another field of it, a worker pushes with the SyncToken
        it knew: QuickBooks answers 5010 (stale object) and the engine must merge both edits."""
        links = self.linked("Customer")
        if not links:
            return
        mapping = links[i % len(links)]
        customer = Customer.objects.get(pk=mapping.object_id)
        if self.has_open_conflict(customer) and not HELD_FIELD_FIX_LANDED:
            return
        self.acct.update("Customer", mapping.qbo_id, BillAddr={"City": f"Stale City {_uid()}"})
        customer.phone = f"(555) 300-{_uid() % 10000:04d}"
        customer.save()
        FAULTS["stale_synctoken_5010"] += 1
        self.run_queue()

    @rule()
    def access_tokens_expire(self) -> None:
        self.sandbox.expire_access_tokens(self.conn.realm_id)
        self.acct.forget_tokens()
        FAULTS["expired_token"] += 1

    @rule()
    def worker_dies_mid_chunk(self) -> None:
        """A worker claims a chunk, does the QuickBooks writes, and dies before recording anything: its lease runs
        out (claimed with a lease already over) and the next drain claims the items again."""
        org, items = claim_chunk("model-doomed", organization_id=self.org.pk, lease_seconds=1e-6)
        if items:
            FAULTS["worker_died"] += 1
            process_items(org, items)

    @rule()
    def organization_reconnects(self) -> None:
        """The same company connected again through the OAuth flow (new tokens)."""
        self._reconnect(self.conn.realm_id)

    @precondition(lambda self: REALM_BOUND_LINKS_LANDED)
    @rule()
    def organization_reconnects_to_another_company(self) -> None:
        """The organization is connected to a different (empty) company; then the operator runs "sync all" and sends
        the invoices again. Nothing may be written to the former company from then on."""
        self.settle()
        self.former[self.conn.realm_id] = bystander_state(self.sandbox, self.conn.realm_id)
        realm = self.sandbox.create_realm()
        self.realms_used.add(realm)
        self._reconnect(realm)
        self.acct.forget_tokens()
        self.acct = Accountant(self.sandbox, realm)
        FAULTS["other_company"] += 1
        start_sync(self.org.pk)
        sent = list(Invoice.objects.filter(organization=self.org, status=Invoice.Status.SENT)
                    .values_list("pk", flat=True))
        if sent:
            start_push(self.org.pk, "Invoice", sent)
        self.run_queue()

    def _reconnect(self, realm: str) -> None:
        url = start_connect(self.org)
        answer = requests.get(url + f"&realm_id={realm}", allow_redirects=False, timeout=10)
        location = answer.headers["Location"]
        params = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
        self.conn = complete_connect(params)
        FAULTS["reconnect"] += 1

    @invariant()
    def count_steps(self) -> None:
        STATS["steps"] += 1

    # --- quiescent points -----------------------------------------------------------------------------------------

    @rule()
    def quiescent_point(self) -> None:
        self.settle()
        self.check()

    def check(self) -> None:
        STATS["checks"] += 1
        try:
            self._check()
        except AssertionError:
            STATS["violations"] += 1
            raise

    def _check(self) -> None:
        api = self.acct.api()
        # Fields: host == QBO, or exactly one open conflict with both current values.
        for entity in ("Customer", "Item"):
            mapper = get_mapper(entity)
            spec = mapper.SPEC
            model = Customer if entity == "Customer" else Item
            adapter = get_adapter(entity)
            rows = {str(r["Id"]): r for r in api.query_all(f"SELECT * FROM {entity} WHERE Active IN (true, false)")}
            links = self.linked(entity)
            assert len({m.qbo_id for m in links}) == len(links), f"{entity}: a QBO record linked twice"
            assert len({m.object_id for m in links}) == len(links), f"{entity}: a host row linked twice"
            hosts = {str(o.pk): o for o in model.objects.filter(organization=self.org)}
            for oid in hosts:
                assert any(m.object_id == oid for m in links), f"{entity} {hosts[oid]} never reached QuickBooks"
            for mapping in links:
                assert mapping.qbo_id in rows, f"{entity} {mapping.object_id} linked to a missing QBO id"
                ours = adapter.to_values(hosts[mapping.object_id])
                theirs = mapper.from_qbo(rows[mapping.qbo_id])
                for field in spec.fields:
                    if field not in ours or field not in theirs:
                        continue
                    open_ = list(Conflict.objects.filter(mapping=mapping, field=field, state=Conflict.State.OPEN))
                    if spec.policies.get(field) == Policy.QBO_OWNS:
                        assert not open_, f"{entity} {mapping.object_id}.{field}: QuickBooks-owned yet held"
                    if values_equal(spec, field, ours[field], theirs[field]) and not open_:
                        continue
                    assert len(open_) == 1, (f"{entity} {hosts[mapping.object_id]}.{field}: host {ours[field]!r}, "
                                             f"QBO {theirs[field]!r}, {len(open_)} open conflict(s)")
                    held = open_[0]
                    assert values_equal(spec, field, held.host_value, ours[field]), (
                        f"{entity} {hosts[mapping.object_id]}.{field}: open conflict shows host "
                        f"{held.host_value!r}, host holds {ours[field]!r}")
                    assert values_equal(spec, field, held.qbo_value, theirs[field]), (
                        f"{entity} {hosts[mapping.object_id]}.{field}: open conflict shows QBO "
                        f"{held.qbo_value!r}, QBO holds {theirs[field]!r}")
            linked_ids = {m.qbo_id for m in links}
            strays = set(rows) - linked_ids
            assert not strays, f"{entity}: QBO records {sorted(strays)} have no host twin"
            assert not (linked_ids - set(rows)), f"{entity}: links to records QBO does not have"
        # Invoices: one QBO invoice per host number; payment state in the host; voids on both sides.
        qbo_invoices = list(api.query_all("SELECT * FROM Invoice"))
        numbers = Counter(r.get("DocNumber") for r in qbo_invoices)
        assert not [n for n, k in numbers.items() if k > 1], f"an invoice exists twice in QBO: {numbers}"
        by_id = {str(r["Id"]): r for r in qbo_invoices}
        invoice_links = {m.object_id: m for m in self.linked("Invoice")}
        refused = self.refused_invoices()
        unvoidable = self.refused_voids()
        for invoice in Invoice.objects.filter(organization=self.org):
            mapping = invoice_links.get(str(invoice.pk))
            if invoice.status == Invoice.Status.DRAFT:
                assert mapping is None, f"draft {invoice} is in QuickBooks"
                continue
            if mapping is None and str(invoice.pk) in refused:
                continue  # QuickBooks refused it (an inactive customer or item): failed, with the reason shown
            if mapping is None:
                # A void invoice that was never sent, or was voided while the organization used a former company
                # (it stays there; the new company gets the invoices that were live at the move).
                left_behind = EntityMapping.objects.filter(
                    organization_id=self.org.pk, entity_type="Invoice", object_id=str(invoice.pk),
                    realm_id__in=list(self.former), qbo_id__isnull=False).exists()
                assert invoice.status == Invoice.Status.VOID and (invoice.sent_at is None or left_behind), (
                    f"{invoice} not in QBO")
                continue
            row = by_id[mapping.qbo_id]
            assert row["DocNumber"] == invoice.number
            if str(invoice.pk) in unvoidable:
                continue  # voided in the host, refused by QuickBooks (payments applied): failed, with the reason
            voided = "Voided" in str(row.get("PrivateNote") or "")
            assert voided == (invoice.status == Invoice.Status.VOID), f"{invoice}: void differs ({row})"
            assert invoice.amount_due == Decimal(str(row["Balance"])), (
                f"{invoice}: host amount due {invoice.amount_due}, QBO balance {row['Balance']}")
        assert set(by_id) == {m.qbo_id for m in invoice_links.values()}, "a QBO invoice no host invoice sent"
        payments = {str(r["Id"]) for r in api.query_all("SELECT * FROM Payment")}
        assert payments <= self.acct.created["Payment"], "a payment the accountant did not record"
        # No write reached the bystander's company; nothing of ours sits in the wrong realm.
        assert self.bystander_state() == self.bystander["state"], "a write reached another company"
        for realm, state in self.former.items():
            assert bystander_state(self.sandbox, realm) == state, f"a write reached the former company {realm}"
        # reconcile() agrees: books match (fields held by open conflicts are left out by reconcile itself).
        report = reconcile(self.org.pk)
        STATS["open_conflicts_at_checks"] += report.open_conflicts
        drift = [d for d in report.drift if not (d.entity == "Invoice" and (
            (d.kind == "not_in_qbo" and d.object_id in refused)
            or (d.kind in ("void_not_in_qbo", "payment_differs") and d.object_id in unvoidable)))]
        assert not drift, "reconcile: " + "; ".join(d.line() for d in drift)

    def refused_voids(self) -> set[str]:
        """Invoices voided in the host whose void QuickBooks refused because payments are applied to them (code
        6000, "Delete or change the payments first"): the void item failed with that reason, the invoice stays live
        in QuickBooks, and reconcile lists it (void_not_in_qbo) for a person. The agreed outcome, not a loss."""
        failed = QueueItem.objects.filter(organization_id=self.org.pk, entity_type="Invoice", operation="void",
                                          status="failed", last_error__contains="payments applied")
        return set(failed.values_list("object_id", flat=True))

    def refused_invoices(self) -> set[str]:
        """Sent invoices QuickBooks refused because their customer or an item was made inactive there: the push
        failed visibly (mapping and queue item failed, QBO's reason kept), which is the agreed outcome."""
        failed = EntityMapping.objects.filter(organization_id=self.org.pk, entity_type="Invoice", qbo_id__isnull=True,
                                              state=EntityMapping.State.FAILED, last_error__contains="code=610")
        ids = set(failed.values_list("object_id", flat=True))
        voided = {str(pk) for pk in Invoice.objects.filter(organization=self.org, status=Invoice.Status.VOID)
                  .values_list("pk", flat=True)}
        for oid in ids - voided:  # voided since: a push retried after the void completes ("nothing to send")
            assert QueueItem.objects.filter(organization_id=self.org.pk, entity_type="Invoice", object_id=oid,
                                            status="failed").exists(), f"invoice {oid} refused but no failed item"
        return ids

    def bystander_state(self) -> dict[str, str]:
        return bystander_state(self.sandbox, self.bystander["realm"])


def bystander_state(sandbox: Any, realm: str) -> dict[str, str]:
    accountant = Accountant(sandbox, realm)
    try:
        state = {}
        for entity in ("Customer", "Item", "Invoice", "Payment"):
            where = " WHERE Active IN (true, false)" if entity in ("Customer", "Item") else ""
            for row in accountant.api().query_all(f"SELECT * FROM {entity}{where}"):
                state[f"{entity}:{row['Id']}"] = str(row["SyncToken"])
        return state
    finally:
        accountant.forget_tokens()


@pytest.fixture
def model_settings(sandbox_settings):
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": VERIFIER}
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "CRITICAL_FIELDS": CRITICAL, "MAX_ATTEMPTS": 100,
                                 "TIME_SCALE": 600, "REDIRECT_URI": "http://testserver/qbo/oauth/callback/"}
    return sandbox_settings


def test_random_histories_keep_both_books_in_step(model_settings, qbo_sandbox) -> None:
    realm = qbo_sandbox.create_realm()
    conn = connect_org(qbo_sandbox, realm, OrganizationFactory(name="Bystander"))
    CustomerFactory(organization=conn.organization, display_name="Bystander Customer")
    drain(budget_seconds=60)
    assert EntityMapping.objects.filter(organization_id=conn.organization_id, qbo_id__isnull=False).exists()
    SyncModel.sandbox = qbo_sandbox
    SyncModel.bystander = {"realm": realm, "state": bystander_state(qbo_sandbox, realm)}
    profile = settings.get_profile(PROFILE)
    STATS["started"] = time.monotonic()
    try:
        run_state_machine_as_test(SyncModel, settings=profile)
    finally:
        print("\nmodel summary: " + json.dumps(write_summary()))


def write_summary() -> dict[str, Any]:
    summary = {"profile": PROFILE, "histories": STATS["histories"], "steps": STATS["steps"],
               "quiescent_checks": STATS["checks"], "faults": dict(FAULTS), "faults_total": sum(FAULTS.values()),
               "sandbox_served": dict(SANDBOX), "open_conflicts_at_checks": STATS["open_conflicts_at_checks"],
               "resolved_by_a_person": STATS["resolved"], "violations": STATS["violations"],
               "seconds": round(time.monotonic() - STATS["started"], 1)}
    path = os.environ.get("QBO_MODEL_SUMMARY")
    if path:
        with open(path, "w") as fh:
            json.dump(summary, fh, indent=2)
    return summary
