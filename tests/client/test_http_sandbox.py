"""The client against the QBO sandbox over a real socket (issue 4, "Done when", client part).

Most tests use the session sandbox (``qbo_sandbox``/``qbo_realm``) with per-realm overrides. Tests that need a
fast clock (429 windows) or to move time (CDC's 30-day limit) start their own sandbox, so that neither
``time_scale`` nor ``advance()`` leaks into other tests.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from benchmarks.throttle import run as run_bench
from qbo_sync.client import (
    BatchOperation,
    InMemoryTokenProvider,
    InProcessThrottle,
    QboClient,
    QboOAuthClient,
    RequestKind,
    TokenSet,
    quote_value,
)
from qbo_sync.exceptions import (
    QboAuthError,
    QboDuplicateName,
    QboNotFound,
    QboProtocolError,
    QboRateLimited,
    QboReauthRequired,
    QboServerError,
    QboStaleObject,
)
from qbo_sync.sandbox import Sandbox

CLIENT_ID = "sandbox-test-client"


class ReactiveThrottle:
    """No proactive limits (the client does not know the realm's lowered limit); honours 429 penalties."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.inner = InProcessThrottle(10**6, 10**3, 10**6, requests_per_second=None, time_scale=time_scale)
        self.penalties = 0

    def acquire(self, realm_id: str, kind: RequestKind = "request") -> AbstractContextManager[None]:
        return self.inner.acquire(realm_id, kind)

    def penalize(self, realm_id: str, seconds: float) -> None:
        self.penalties += 1
        self.inner.penalize(realm_id, seconds)


def make_client(sandbox: Sandbox, realm_id: str, **kwargs: Any) -> tuple[QboClient, InMemoryTokenProvider, list[str]]:
    """A client for ``realm_id`` whose token provider refreshes through the sandbox's real token endpoint."""
    oauth = QboOAuthClient.for_base_url(sandbox.base_url, CLIENT_ID, "any-secret")
    refreshed: list[str] = []

    def refresher(refresh_token: str) -> TokenSet:
        refreshed.append(refresh_token)
        return oauth.refresh(refresh_token)

    tokens = InMemoryTokenProvider(TokenSet.from_response(sandbox.issue_tokens(realm_id)), refresher)
    kwargs.setdefault("throttle", InProcessThrottle(time_scale=sandbox.options["time_scale"]))
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("throttle_backoff", 60.0 / sandbox.options["time_scale"])
    client = QboClient(realm_id, api_base_url=sandbox.base_url, tokens=tokens, **kwargs)
    return client, tokens, refreshed


def sandbox_clock(sandbox: Sandbox) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(sandbox.clock.time(), UTC)


@pytest.fixture(scope="module")
def fast_sandbox() -> Iterator[Sandbox]:
    """A private sandbox whose minute lasts one second."""
    with Sandbox(time_scale=60) as sandbox:
        yield sandbox


@pytest.fixture
def own_sandbox() -> Iterator[Sandbox]:
    """A private sandbox whose clock a test may move."""
    with Sandbox() as sandbox:
        yield sandbox


def _customers(client: QboClient, n: int, prefix: str) -> list[dict[str, Any]]:
    """Create n customers with batches of 30 (one requestid per batch)."""
    out: list[dict[str, Any]] = []
    for start in range(0, n, 30):
        ops = [
            BatchOperation(f"c{i}", "create", "Customer", {"DisplayName": f"{prefix} {i:05d}"})
            for i in range(start, min(n, start + 30))
        ]
        results = client.batch(ops, request_id=f"{prefix}-{start}")
        assert all(r.ok for r in results), [r.error for r in results if r.error]
        out += [r.payload for r in results if r.payload]
    return out


# --- basics ---------------------------------------------------------------------------------------------------


def test_crud_query_and_escaping(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm)
    assert client.company_info()["CompanyName"]
    name = "Amy's Bird Sanctuary \\ & Co"
    created = client.create("Customer", {"DisplayName": name}, request_id="crud-1")
    assert client.read("customer", created["Id"])["DisplayName"] == name
    found = client.query(f"SELECT * FROM Customer WHERE DisplayName = {quote_value(name)}")
    assert [r["Id"] for r in found.rows] == [created["Id"]]
    updated = client.update(
        "Customer", {"Id": created["Id"], "SyncToken": created["SyncToken"], "CompanyName": "Birds"}, "crud-2"
    )
    assert updated["SyncToken"] != created["SyncToken"] and updated["DisplayName"] == name
    assert client.count("Customer", f"DisplayName = {quote_value(name)}") == 1
    with pytest.raises(QboStaleObject):
        client.update("Customer", {"Id": created["Id"], "SyncToken": "0", "CompanyName": "x"}, "crud-3")
    with pytest.raises(QboDuplicateName):
        client.create("Customer", {"DisplayName": name}, request_id="crud-4")
    with pytest.raises(QboNotFound):
        client.read("Customer", "987654")
    client.close()


# --- 401 and refresh --------------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_exactly_once_across_threads(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, tokens, refreshed = make_client(qbo_sandbox, qbo_realm)
    customer = client.create("Customer", {"DisplayName": "Refresh Me"}, request_id="rf-1")
    old_access = tokens.tokens.access_token
    assert qbo_sandbox.expire_access_tokens(qbo_realm) >= 1
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)

    def work() -> None:
        try:
            barrier.wait(10)
            assert client.read("Customer", customer["Id"])["DisplayName"] == "Refresh Me"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert len(refreshed) == 1
    assert tokens.refresh_count == 1
    assert tokens.tokens.access_token != old_access
    assert qbo_sandbox.stats(qbo_realm)["auth_failures"] >= 1


def test_revoked_connection_raises_reauth_required(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, tokens, _ = make_client(qbo_sandbox, qbo_realm)
    oauth = QboOAuthClient.for_base_url(qbo_sandbox.base_url, CLIENT_ID, "any-secret")
    oauth.revoke(tokens.tokens.refresh_token)
    with pytest.raises(QboReauthRequired) as info:
        client.read("Customer", "1")
    assert info.value.retryable is False and info.value.code == "invalid_grant"


def test_oauth_refresh_with_unknown_token_is_invalid_grant(qbo_sandbox: Sandbox) -> None:
    oauth = QboOAuthClient.for_base_url(qbo_sandbox.base_url, CLIENT_ID, "any-secret")
    with pytest.raises(QboReauthRequired):
        oauth.refresh("AB11-not-a-real-refresh-token")


# --- lost responses, 5xx, resets: retried with the same requestid ---------------------------------------------


def test_response_lost_after_commit_leaves_exactly_one_record(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm)
    qbo_sandbox.configure(qbo_realm, lost_response_rate=1.0)  # every committed write loses its response once
    ids = {client.create("Customer", {"DisplayName": f"Lost {i}"}, request_id=f"lost-{i}")["Id"] for i in range(5)}
    qbo_sandbox.configure(qbo_realm, lost_response_rate=0.0)
    assert len(ids) == 5
    for i in range(5):
        assert client.count("Customer", f"DisplayName = {quote_value(f'Lost {i}')}") == 1
    stats = qbo_sandbox.stats(qbo_realm)
    assert stats["lost_responses"] == 5
    assert stats["deduplicated"] == 5
    assert stats["entities"]["Customer"] == 5


def test_batch_response_lost_after_commit_leaves_exactly_one_record_per_item(
    qbo_sandbox: Sandbox, qbo_realm: str
) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm)
    qbo_sandbox.configure(qbo_realm, lost_response_rate=1.0)
    ops = [BatchOperation(f"b{i}", "create", "Customer", {"DisplayName": f"Batch Lost {i}"}) for i in range(10)]
    results = client.batch(ops, request_id="batch-lost-1")
    qbo_sandbox.configure(qbo_realm, lost_response_rate=0.0)
    assert all(r.ok for r in results)
    assert client.count("Customer", "DisplayName LIKE 'Batch Lost%'") == 10
    assert qbo_sandbox.stats(qbo_realm)["lost_responses"] == 1


def test_server_faults_and_resets_are_retried(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm, max_retries=30)
    qbo_sandbox.configure(qbo_realm, fault_rate=0.3, reset_rate=0.2)
    names = [f"Flaky {i}" for i in range(15)]
    for i, name in enumerate(names):
        client.create("Customer", {"DisplayName": name}, request_id=f"flaky-{i}")
    qbo_sandbox.configure(qbo_realm, fault_rate=0.0, reset_rate=0.0)
    assert client.count("Customer", "DisplayName LIKE 'Flaky%'") == 15
    stats = qbo_sandbox.stats(qbo_realm)
    assert sum(stats["faults_injected"].values()) + stats["resets"] > 0


def test_server_fault_gives_up_as_typed_error(qbo_sandbox: Sandbox, qbo_realm: str, qbo_fail_next) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm, max_retries=2)
    qbo_fail_next("service_unavailable", times=3, operation="read")  # the first try and both retries
    with pytest.raises(QboServerError) as info:
        client.read("Customer", "1")
    assert info.value.retryable and info.value.status == 503 and info.value.intuit_tid
    assert qbo_sandbox.stats(qbo_realm)["scripted"] == {"service_unavailable": 3}
    assert client.company_info()  # the script is used up: QuickBooks answers again


# --- throttling -----------------------------------------------------------------------------------------------


def test_429_bursts_are_absorbed(fast_sandbox: Sandbox) -> None:
    realm = fast_sandbox.create_realm()
    fast_sandbox.configure(realm, rate_limit=15)  # the client does not know: it learns from 429s
    throttle = ReactiveThrottle(time_scale=60)
    client, _, _ = make_client(fast_sandbox, realm, throttle=throttle, max_throttle_retries=20)
    customer = client.create("Customer", {"DisplayName": "Burst"}, request_id="burst-0")
    errors: list[BaseException] = []
    done: list[int] = []

    def work(n: int) -> None:
        try:
            for _ in range(5):
                client.read("Customer", customer["Id"])
                done.append(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert len(done) == 40
    stats = fast_sandbox.stats(realm)
    assert stats["throttled_total"] > 0  # there were bursts of 429s ...
    assert throttle.penalties == stats["throttled_total"]  # ... each one paused the realm


def test_xml_429_gives_a_typed_error_when_retries_are_exhausted(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(
        qbo_sandbox, qbo_realm, throttle=ReactiveThrottle(), max_throttle_retries=0, throttle_backoff=0.01
    )
    qbo_sandbox.configure(qbo_realm, rate_limit=1)
    client.company_info()
    with pytest.raises(QboRateLimited) as info:
        client.company_info()
    err = info.value
    assert err.status == 429 and err.code == "3001" and err.fault_type == "SERVICE"
    assert err.retryable and err.wait_seconds is not None and err.intuit_tid


@pytest.mark.slow
def test_bench_runs_at_the_limit_without_failed_calls() -> None:
    # The measurement script, shortened: 10 threads against 500/min and 10 in flight, a QBO minute = 3 s.
    # Figures (rate reached, 429s) depend on the machine's timing, so they are printed by the script, not
    # asserted here; what must hold is that no call fails.
    result = run_bench(time_scale=20, minutes=2, threads=10)
    assert result.failed == 0
    assert result.succeeded > 0


# --- garbage --------------------------------------------------------------------------------------------------


def test_garbage_bodies_from_the_sandbox_give_typed_errors(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    # garbage_rate answers a truncated JSON 200 or an HTML 502 page: either way a typed, retryable error.
    client, _, _ = make_client(qbo_sandbox, qbo_realm, max_retries=1)
    qbo_sandbox.configure(qbo_realm, garbage_rate=1.0)
    for _ in range(4):
        with pytest.raises((QboProtocolError, QboServerError)) as info:
            client.read("Customer", "1")
        assert info.value.retryable and info.value.intuit_tid
    assert qbo_sandbox.stats(qbo_realm)["garbage"] == 8


def test_garbage_bodies_now_and_then_do_not_fail_calls(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm, max_retries=20)
    qbo_sandbox.configure(qbo_realm, garbage_rate=0.4)
    names = [f"Garbled {i}" for i in range(10)]
    for i, name in enumerate(names):
        client.create("Customer", {"DisplayName": name}, request_id=f"garbled-{i}")
    qbo_sandbox.configure(qbo_realm, garbage_rate=0.0)
    assert client.count("Customer", "DisplayName LIKE 'Garbled%'") == 10  # retries created no duplicates
    assert qbo_sandbox.stats(qbo_realm)["garbage"] > 0


class _GarbageHandler(http.server.BaseHTTPRequestHandler):
    replies: list[tuple[int, str, bytes]] = []

    def do_GET(self) -> None:
        status, ctype, body = self.replies.pop(0) if self.replies else (200, "application/json", b"{}")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("intuit_tid", "1-garbage")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "ctype", "body", "cls"),
    [
        (200, "application/json", b'{"Customer": {"Id": "1", "Displ', QboProtocolError),
        (200, "text/html", b"<html><body>Maintenance</body></html>", QboProtocolError),
        (502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>", QboServerError),
        (400, "application/json", b"\xff\xfe\x00garbage", QboProtocolError),
        (429, "application/xml", b"<IntuitResponse><Fault type='SERVICE'><Error code='3001'>", QboRateLimited),
        (401, "text/plain", b"nope", QboAuthError),
    ],
)
def test_garbage_bodies_over_a_real_socket(status: int, ctype: str, body: bytes, cls: type) -> None:
    handler = type("H", (_GarbageHandler,), {"replies": [(status, ctype, body)] * 10})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        expires = datetime.now(UTC) + timedelta(hours=1)
        tokens = InMemoryTokenProvider(TokenSet("a" * 30, "r" * 30, expires), lambda r: TokenSet("b" * 30, r, expires))
        client = QboClient(
            "1",
            api_base_url=f"http://127.0.0.1:{server.server_address[1]}",
            tokens=tokens,
            throttle=ReactiveThrottle(),
            max_retries=1,
            max_throttle_retries=0,
            backoff_base=0.001,
            throttle_backoff=0.001,
        )
        with pytest.raises(cls) as info:
            client.read("Customer", "1")
        assert info.value.intuit_tid == "1-garbage"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


# --- pagination, CDC, batch -----------------------------------------------------------------------------------


def test_query_all_pages_over_more_than_1000_rows(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm)
    created = _customers(client, 1030, "Page")
    rows = list(client.query_all("SELECT * FROM Customer WHERE DisplayName LIKE 'Page%' ORDERBY Id"))
    assert len(rows) == 1030
    assert {r["Id"] for r in rows} == {c["Id"] for c in created}
    assert len(list(client.query_all("SELECT * FROM Customer", page_size=400))) == 1030
    assert client.count("Customer") == 1030


def test_cdc_splits_a_window_at_the_1000_object_cap(own_sandbox: Sandbox) -> None:
    realm = own_sandbox.create_realm()
    own_sandbox.configure(realm, batch_rate=None)  # 44 batches: do not wait a real minute for the batch window
    client, _, _ = make_client(
        own_sandbox, realm, clock=sandbox_clock(own_sandbox), throttle=InProcessThrottle(batch_per_minute=1000)
    )
    since = datetime.fromtimestamp(own_sandbox.clock.time(), UTC) - timedelta(minutes=5)
    early = _customers(client, 700, "Early")
    own_sandbox.advance(3600)
    late = _customers(client, 600, "Late")
    result = client.cdc(["Customer", "Item"], since)
    ids = {o["Id"] for o in result.changed["Customer"]}
    assert ids == {c["Id"] for c in early + late}
    assert result.changed["Item"] == []
    assert result.cdc_calls > 2  # the capped call, per entity, then halves
    assert result.query_calls >= 1  # the earlier half of a capped window is read with queries
    assert result.deletes_complete["Item"] is True


def test_cdc_older_than_30_days_falls_back_to_queries(own_sandbox: Sandbox) -> None:
    realm = own_sandbox.create_realm()
    client, _, _ = make_client(own_sandbox, realm, clock=sandbox_clock(own_sandbox))
    since = datetime.fromtimestamp(own_sandbox.clock.time(), UTC) - timedelta(minutes=1)
    first = client.create("Customer", {"DisplayName": "Old Change"}, request_id="old-1")
    own_sandbox.advance(31 * 86400)
    client, _, _ = make_client(own_sandbox, realm, clock=sandbox_clock(own_sandbox))  # fresh tokens
    second = client.create("Customer", {"DisplayName": "New Change"}, request_id="old-2")
    result = client.cdc(["Customer"], since)
    assert {o["Id"] for o in result.changed["Customer"]} == {first["Id"], second["Id"]}
    assert result.cdc_calls == 0 and result.deletes_complete["Customer"] is False
    assert own_sandbox.stats(realm)["requests"].get("cdc", 0) == 0
    recent = client.cdc(["Customer"], datetime.fromtimestamp(own_sandbox.clock.time(), UTC) - timedelta(days=1))
    assert [o["Id"] for o in recent.changed["Customer"]] == [second["Id"]]
    assert recent.cdc_calls == 1


def test_cdc_returns_deleted_stubs(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm, clock=sandbox_clock(qbo_sandbox))
    since = datetime.fromtimestamp(qbo_sandbox.clock.time(), UTC) - timedelta(minutes=1)
    account = client.query("SELECT * FROM Account WHERE AccountType = 'Income'").rows[0]
    item = client.create(
        "Item", {"Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": account["Id"]}}, "del-1"
    )
    customer = client.create("Customer", {"DisplayName": "Deleting"}, request_id="del-2")
    line = {
        "Amount": 10,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}},
    }
    invoice = client.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line]}, "del-3")
    stub = client.delete("Invoice", invoice["Id"], invoice["SyncToken"], request_id="del-4")
    assert stub["status"] == "Deleted"
    result = client.cdc(["Customer", "Item", "Invoice"], since)
    assert [o["Id"] for o in result.deleted["Invoice"]] == [invoice["Id"]]
    assert result.changed["Invoice"] == []
    assert [o["Id"] for o in result.changed["Item"]] == [item["Id"]]
    assert result.cdc_calls == 1 and all(result.deletes_complete.values())


def test_batch_returns_per_item_results_and_faults(qbo_sandbox: Sandbox, qbo_realm: str) -> None:
    client, _, _ = make_client(qbo_sandbox, qbo_realm)
    existing = client.create("Customer", {"DisplayName": "Batch Existing"}, request_id="bx-0")
    client.update("Customer", {"Id": existing["Id"], "SyncToken": existing["SyncToken"], "Notes": "x"}, "bx-1")
    ops = [
        BatchOperation("ok", "create", "Customer", {"DisplayName": "Batch New"}),
        BatchOperation("dup", "create", "Customer", {"DisplayName": "Batch Existing"}),
        BatchOperation("stale", "update", "Customer", {"Id": existing["Id"], "SyncToken": "0", "sparse": True}),
        BatchOperation("missing", "update", "Customer", {"Id": "987654", "SyncToken": "0", "sparse": True}),
        BatchOperation("q", "query", query="SELECT * FROM Customer WHERE DisplayName LIKE 'Batch%'"),
    ]
    results = {r.bid: r for r in client.batch(ops, request_id="bx-batch")}
    assert results["ok"].ok and results["ok"].payload and results["ok"].payload["DisplayName"] == "Batch New"
    assert isinstance(results["dup"].error, QboDuplicateName)
    assert isinstance(results["stale"].error, QboStaleObject)
    assert isinstance(results["missing"].error, QboNotFound)
    assert results["q"].query is not None and len(results["q"].query.rows) >= 1
    assert all(r.error is None or not r.error.retryable for r in results.values())
    assert qbo_sandbox.stats(qbo_realm)["requests"]["batch"] == 1
