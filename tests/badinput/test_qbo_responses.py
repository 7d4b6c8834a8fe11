"""Bad answers from QuickBooks, driven through the real engine (queue -> drain -> push/pull -> client -> HTTP).

A tiny local HTTP server stands in for QBO and answers every API call with a crafted body: truncated JSON, an HTML
error page, an XML fault, JSON with missing fields or unexpected types, amounts with more decimals than money has.
Each must end as a typed error and a retry or a failed item, never a crash of the worker (``processor_error``) and
never a corrupt row (a mapping pointing at no QuickBooks id, a half-applied invoice).
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from batchly.models import Invoice
from qbo_sync.models import EntityMapping, QueueItem
from qbo_sync.services.queue import start_pull
from tests.factories import CustomerFactory, InvoiceFactory, InvoiceLineFactory, ItemFactory

pytestmark = pytest.mark.django_db(transaction=True)

XML_FAULT = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse><Fault type="ValidationFault">'
             b'<Error code="6000"><Message>A business validation error has occurred</Message>'
             b'<Detail>Business Validation Error</Detail></Error></Fault></IntuitResponse>')
HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

# name -> (status, content type, body) answered to every API call
BODIES = {
    "truncated_json": (200, "application/json", b'{"Customer": {"Id": "71", "DisplayName": "Tru'),
    "html_error_page": (502, "text/html", HTML),
    "html_200": (200, "text/html", HTML),
    "xml_fault": (400, "application/xml", XML_FAULT),
    "empty_body": (200, "application/json", b""),
    "missing_fields": (200, "application/json", b'{"Customer": {}, "time": "2025-01-01T00:00:00-08:00"}'),
    "wrong_wrapper": (200, "application/json", b'{"Invoice": {"Id": "5", "SyncToken": "0"}}'),
    "unexpected_types": (200, "application/json",
                         b'{"Customer": {"Id": {"nested": 1}, "SyncToken": [0], "DisplayName": 42, "Active": "yes"}}'),
    "json_array": (200, "application/json", b'[1, 2, 3]'),
    "not_json_at_all": (200, "application/json", b"\x00\xff\xfe garbage"),
}


class Crafted:
    """Answers every request with ``self.answer`` (status, content type, body); records the paths asked."""

    def __init__(self) -> None:
        crafted = self
        self.answer = BODIES["html_error_page"]
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                crafted.paths.append(self.path)
                status, ctype, body = crafted.answer(self.path) if callable(crafted.answer) else crafted.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crafted(sandbox_settings):
    server = Crafted()
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "API_BASE_URL": server.base_url}
    # (the token endpoint stays the sandbox's)
    # Short client backoffs (the scale divides them) and few attempts: each case ends in seconds.
    sandbox_settings.QBO_SYNC = {**sandbox_settings.QBO_SYNC, "MAX_ATTEMPTS": 2, "TIME_SCALE": 2000}
    yield server
    server.close()


def _outcome(item: QueueItem) -> QueueItem:
    item.refresh_from_db()
    assert item.error_code != "processor_error", f"the worker crashed: {item.last_error}"
    assert item.status in ("pending", "failed", "dead"), item.status
    assert item.last_error, "a typed, readable error is recorded"
    return item


@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_bad_answer_to_a_push_is_a_typed_error_and_no_corrupt_row(case, crafted, org, run_queue) -> None:
    crafted.answer = BODIES[case]
    customer = CustomerFactory(organization=org)
    report = run_queue()
    assert report.claimed >= 1
    item = _outcome(QueueItem.objects.get(entity_type="Customer", object_id=str(customer.pk)))
    mapping = EntityMapping.objects.filter(entity_type="Customer", object_id=str(customer.pk)).first()
    if mapping is not None:
        assert mapping.qbo_id in (None, "") or mapping.qbo_id.isdigit(), f"corrupt link {mapping.qbo_id!r}"
        assert mapping.state != "synced" or mapping.qbo_id
    print(case, item.status, item.error_code, item.last_error[:160])


@pytest.mark.parametrize("case", sorted(BODIES))
def test_a_bad_answer_to_an_invoice_push_leaves_the_invoice_a_draft(case, crafted, org, run_queue) -> None:
    crafted.answer = BODIES[case]
    invoice = InvoiceFactory(organization=org)
    InvoiceLineFactory(invoice=invoice, item=ItemFactory(organization=org))
    invoice.recalculate()
    from qbo_sync.services.queue import create_job

    job = create_job(org.pk, "push", "Invoice", [invoice.pk], "push")
    run_queue()
    _outcome(QueueItem.objects.get(job=job))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DRAFT
    assert not EntityMapping.objects.filter(entity_type="Invoice", object_id=str(invoice.pk),
                                            qbo_id__isnull=False).exists()


def _invoice_answer(balance, total="100.00"):
    row = {"Id": "501", "SyncToken": "3", "DocNumber": "B-1", "TotalAmt": total, "Balance": balance,
           "DueDate": "2030-01-01", "Line": [], "MetaData": {"LastUpdatedTime": "2025-01-01T00:00:00-08:00"}}
    body = json.dumps({"QueryResponse": {"Invoice": [row], "startPosition": 1, "maxResults": 1}}).encode()
    return 200, "application/json", body


@pytest.mark.parametrize(("balance", "total", "expected"), [
    (40.123456789, "100.00", ("partial", Decimal("40.12"))),   # more decimals than money has: rounded to cents
    ("12.345", "100.004", ("partial", Decimal("12.35"))),      # amounts as strings, half up
    ("abc", "100.00", None),                                   # not a number: logged, invoice untouched
    (None, "100.00", None),                                    # missing: logged, invoice untouched
    ({"x": 1}, "100.00", None),                                # wrong type
])
def test_bad_amounts_in_a_pulled_invoice(balance, total, expected, crafted, org, run_queue) -> None:
    invoice = InvoiceFactory(organization=org, number="B-1")
    InvoiceLineFactory(invoice=invoice, item=ItemFactory(organization=org), quantity=1, unit_price=Decimal("100"))
    invoice.recalculate()
    Invoice.objects.filter(pk=invoice.pk).update(status="sent")
    from qbo_sync.adapters import get_adapter
    from qbo_sync.models import QboConnection
    from qbo_sync.services.mappings import new_mapping

    realm = QboConnection.objects.get(organization=org).realm_id
    mapping = new_mapping(get_adapter("Invoice"), invoice, org.pk, realm)
    mapping.qbo_id, mapping.sync_token, mapping.state = "501", "1", "synced"
    mapping.save()
    invoice.refresh_from_db()
    before = (invoice.payment_status, invoice.amount_due)
    crafted.answer = _invoice_answer(balance, total)
    job = start_pull(org.pk, "Payment", full=True)
    run_queue()
    item = QueueItem.objects.get(job=job)
    assert item.error_code != "processor_error" and item.status == "completed", (item.status, item.last_error)
    invoice.refresh_from_db()
    if expected is None:
        assert (invoice.payment_status, invoice.amount_due) == before
    else:
        assert (invoice.payment_status, invoice.amount_due) == expected
