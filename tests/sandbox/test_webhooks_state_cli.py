"""Webhooks (signature, formats, retries), the state file and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from qbo_sync.sandbox import Sandbox, sign_webhook, verify_webhook
from qbo_sync.sandbox.__main__ import build_parser
from tests.sandbox.conftest import DATA, Api, sample

TOKEN = "00faeec4-08d0-4996-bb37-698ae19f0149"


def test_sample_signature_verifies():
    vector = sample("webhook_signature_test_vector.json")
    raw = (DATA / vector["raw_body_file"]).read_bytes()
    assert raw.decode() == vector["raw_body"]
    assert sign_webhook(raw, vector["verifier_token"]) == vector["intuit_signature"]
    assert verify_webhook(raw, vector["intuit_signature"], vector["verifier_token"])
    assert not verify_webhook(raw + b" ", vector["intuit_signature"], vector["verifier_token"])


class Receiver:
    """A webhook listener that fails the first ``fail`` deliveries with HTTP 500."""

    def __init__(self, fail: int = 0):
        self.fail = fail
        self.received: list[tuple[dict, bytes]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if outer.fail > 0 else 200
                outer.fail -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_legacy_notification_signed(receiver):
    with Sandbox(webhook_url=receiver.url, verifier_token=TOKEN) as sb:
        realm = sb.create_realm()
        api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
        c = api.customer("Hooked")
        assert sb.wait_for_webhooks()
        headers, body = receiver.received[0]
        assert verify_webhook(body, headers["intuit-signature"], TOKEN)
        assert headers["intuit-notification-schema-version"] == "0.1"
        assert headers["content-type"].startswith("application/json")
        payload = json.loads(body)
        note = payload["eventNotifications"][0]
        assert note["realmId"] == realm
        ent = note["dataChangeEvent"]["entities"][0]
        assert ent == {"name": "Customer", "id": c["Id"], "operation": "Create", "lastUpdated": ent["lastUpdated"]}
        assert ent["lastUpdated"].endswith("Z")
        # the accountant's edit (any API client) triggers an Update
        api.post("customer", {"Id": c["Id"], "SyncToken": "0", "sparse": True, "Notes": "edited"})
        assert sb.wait_for_webhooks()
        ops = [e["operation"] for _, b in receiver.received
               for n in json.loads(b)["eventNotifications"] for e in n["dataChangeEvent"]["entities"]]
        assert ops == ["Create", "Update"]


def test_payment_notifies_invoice_update_and_void_delete(receiver):
    with Sandbox(webhook_url=receiver.url, verifier_token=TOKEN) as sb:
        realm = sb.create_realm()
        api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
        c, i = api.customer(), api.item()
        inv = api.invoice(c["Id"], i["Id"], 10)
        api.create("Payment", {"TotalAmt": 10, "CustomerRef": {"value": c["Id"]}, "Line": [
            {"Amount": 10, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
        inv2 = api.invoice(c["Id"], i["Id"], 5)
        api.post("invoice", {"Id": inv2["Id"], "SyncToken": "0"}, operation="void")
        inv3 = api.invoice(c["Id"], i["Id"], 5)
        api.post("invoice", {"Id": inv3["Id"], "SyncToken": "0"}, operation="delete")
        assert sb.wait_for_webhooks()
        events = [(e["name"], e["operation"]) for _, b in receiver.received
                  for n in json.loads(b)["eventNotifications"] for e in n["dataChangeEvent"]["entities"]]
        assert ("Invoice", "Update") in events and ("Payment", "Create") in events
        assert ("Invoice", "Void") in events and ("Invoice", "Delete") in events


def test_cloudevents_format(receiver):
    with Sandbox(webhook_url=receiver.url, verifier_token=TOKEN, cloudevents=True) as sb:
        realm = sb.create_realm()
        api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
        c = api.customer("Cloud")
        assert sb.wait_for_webhooks()
        headers, body = receiver.received[0]
        assert verify_webhook(body, headers["intuit-signature"], TOKEN)
        events = json.loads(body)
        recorded = sample("webhook_payload_cloudevents.json")
        assert isinstance(events, list) and set(events[0]) == set(recorded[0])
        ev = events[0]
        assert ev["type"] == "qbo.customer.created.v1" and ev["specversion"] == "1.0"
        assert ev["intuitentityid"] == c["Id"] and ev["intuitaccountid"] == realm


def test_failed_deliveries_retried_on_schedule():
    recv = Receiver(fail=2)
    try:
        with Sandbox(webhook_url=recv.url, verifier_token=TOKEN) as sb:
            realm = sb.create_realm()
            api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
            api.customer("Retry me")
            deadline = time.monotonic() + 5
            while sb.webhooks.stats()["failed_attempts"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # the retry is scheduled once the failure is recorded
            assert len(recv.received) == 1
            api.customer("Queued behind")  # ordered: waits for the failing delivery
            sb.advance(9)
            time.sleep(0.1)
            assert len(recv.received) == 1  # not yet: first retry after 10 s
            sb.advance(1.5)
            deadline = time.monotonic() + 5
            while sb.webhooks.stats()["failed_attempts"] < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(recv.received) == 2
            sb.advance(20.5)  # second retry after 20 s more, which succeeds
            assert sb.wait_for_webhooks()
            assert len(recv.received) >= 3
            bodies = [json.loads(b) for _, b in recv.received]
            assert bodies[0] == bodies[1] == bodies[2]  # the same notification, retried
            names = [e["id"] for b in bodies[3:] for n in b["eventNotifications"]
                     for e in n["dataChangeEvent"]["entities"]]
            assert names == ["2"]  # the queued event came after
            st = sb.stats()["webhooks"]
            assert st["failed_attempts"] == 2 and st["delivered"] == 2
    finally:
        recv.close()


def test_state_file_round_trip(tmp_path):
    path = tmp_path / "sandbox.json"
    with Sandbox(realms=["555"], starter_data=True, state_file=str(path)) as sb:
        tokens = sb.issue_tokens("555")
        api = Api(sb, "555", tokens["access_token"])
        c = api.customer("Persisted")
    assert path.exists()
    with Sandbox(state_file=str(path)) as sb2:
        api = Api(sb2, "555", tokens["access_token"])
        got = api.read("Customer", c["Id"])
        assert got["DisplayName"] == "Persisted"
        inv = api.read("Invoice", "1")
        assert inv["Balance"] == 0 and inv["LinkedTxn"]  # starter data: paid invoice
        assert api.create("Customer", {"DisplayName": "Next"})["Id"] == str(int(c["Id"]) + 1)


def test_state_saved_on_change_debounced(tmp_path):
    path = tmp_path / "state.json"
    with Sandbox(realms=["9"], state_file=str(path)) as sb:
        api = Api(sb, "9", sb.issue_tokens("9")["access_token"])
        api.customer("Saved soon")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if path.exists() and "Saved soon" in path.read_text():
                break
            time.sleep(0.05)
        assert "Saved soon" in path.read_text()


def test_cli_parser_has_every_flag():
    args = build_parser().parse_args([
        "--host", "0.0.0.0", "--port", "8765", "--realm", "1", "--realm", "2", "--starter-data",
        "--client-id", "id", "--client-secret", "sec", "--webhook-url", "http://x", "--verifier-token", "t",
        "--cloudevents", "--latency-ms", "100-400", "--rate-limit", "100", "--concurrency", "5",
        "--batch-rate", "10", "--batch-size", "10", "--fault-rate", "0.1", "--reset-rate", "0.1",
        "--slow-rate", "0.1", "--lost-response-rate", "0.1", "--access-token-ttl", "60",
        "--refresh-rotate-after", "120", "--time-scale", "60", "--state", "s.json"])
    assert args.realm == ["1", "2"] and args.latency_ms == "100-400" and args.time_scale == 60


def test_cli_runs_a_server(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "qbo_sync.sandbox", "--port", "0", "--realm", "42"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line
        base = line.strip().split()[-1]
        r = requests.post(f"{base}/_sandbox/tokens", json={"realm_id": "42"}, timeout=5).json()
        info = requests.get(f"{base}/v3/company/42/companyinfo/42", timeout=5,
                            headers={"Authorization": f"Bearer {r['access_token']}", "Accept": "application/json"})
        assert info.status_code == 200
        out = subprocess.run([sys.executable, "-m", "qbo_sync.sandbox", "--help"], capture_output=True, text=True,
                             check=True).stdout
        for flag in ("--lost-response-rate", "--time-scale", "--state", "--cloudevents", "--batch-rate"):
            assert flag in out
    finally:
        proc.terminate()
        proc.wait(timeout=5)
