"""QboClient behaviour against a fake transport: what is sent, retries, refresh, pagination, CDC, batch, logs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from qbo_sync.client import BatchOperation, InMemoryTokenProvider, QboClient
from qbo_sync.exceptions import (
    QboAuthError,
    QboDuplicateName,
    QboNotFound,
    QboProtocolError,
    QboRateLimited,
    QboReauthRequired,
    QboServerError,
    QboStaleObject,
    QboSyncError,
    QboTransportError,
)
from tests.client.fakes import ACCESS, REFRESH, CountingRefresher, Reply, Script, Sent, make_client, sample, token_set

CUSTOMER = {"Customer": {"Id": "7", "SyncToken": "0", "DisplayName": "Amy"}, "time": "2025-01-01T00:00:00-08:00"}


def test_every_call_has_minorversion_accept_and_bearer() -> None:
    client, adapter, _ = make_client(Script(Reply(body=CUSTOMER)))
    assert client.read("Customer", "7")["DisplayName"] == "Amy"
    client.create("customer", {"DisplayName": "Amy"}, request_id="q-1")
    sent = adapter.sent
    assert [s.path for s in sent] == ["/v3/company/123/customer/7", "/v3/company/123/customer"]
    for s in sent:
        assert s.params["minorversion"] == "75"
        assert s.headers["Accept"] == "application/json"
        assert s.headers["Authorization"] == f"Bearer {ACCESS}"
    assert "requestid" not in sent[0].params
    assert sent[1].params["requestid"] == "q-1"
    assert sent[1].headers["Content-Type"] == "application/json"
    assert sent[1].body == {"DisplayName": "Amy"}


def test_writes_require_a_request_id() -> None:
    client, adapter, _ = make_client(Script(Reply(body=CUSTOMER)))
    for bad in ["", "  ", "x" * 51]:
        with pytest.raises(ValueError):
            client.create("Customer", {"DisplayName": "Amy"}, request_id=bad)
    with pytest.raises(ValueError):
        client.update("Customer", {"DisplayName": "no id"}, request_id="r")
    assert adapter.sent == []


def test_update_void_delete_shapes() -> None:
    deleted = {"Invoice": {"domain": "QBO", "status": "Deleted", "Id": "266"}, "time": "x"}
    client, adapter, _ = make_client(Script(Reply(body=CUSTOMER), Reply(body=CUSTOMER), Reply(body=deleted)))
    client.update("Customer", {"Id": "7", "SyncToken": "0", "Active": False}, request_id="u-1")
    client.void("Customer", "7", "1", request_id="v-1")
    stub = client.delete("Invoice", "266", "0", request_id="d-1")
    assert stub["status"] == "Deleted"
    update, void, delete = adapter.sent
    assert update.body == {"Id": "7", "SyncToken": "0", "Active": False, "sparse": True}
    assert void.params["operation"] == "void" and void.body == {"Id": "7", "SyncToken": "1"}
    assert delete.params["operation"] == "delete" and delete.path.endswith("/invoice")
    assert delete.params["requestid"] == "d-1"


def test_401_refreshes_exactly_once_then_succeeds() -> None:
    refresher = CountingRefresher()
    script = Script(Reply(401, sample("fault_401_token_expired_response.json")), Reply(body=CUSTOMER))
    client, adapter, _ = make_client(script, refresher=refresher)
    client.create("Customer", {"DisplayName": "Amy"}, request_id="c-1")
    assert refresher.calls == [REFRESH]
    assert adapter.sent[0].headers["Authorization"] == f"Bearer {ACCESS}"
    assert adapter.sent[1].headers["Authorization"] == f"Bearer {ACCESS}-1"
    assert adapter.sent[1].params["requestid"] == "c-1"


def test_second_401_gives_up_without_a_second_refresh() -> None:
    refresher = CountingRefresher()
    client, adapter, _ = make_client(Script(Reply(401, b"")), refresher=refresher)
    with pytest.raises(QboAuthError):
        client.read("Customer", "1")
    assert len(refresher.calls) == 1
    assert len(adapter.sent) == 2


def test_invalid_grant_during_refresh_surfaces_as_reauth_required() -> None:
    def refresher(token: str) -> Any:
        raise QboReauthRequired(code="invalid_grant")

    client, _, _ = make_client(Script(Reply(401, b"")), refresher=refresher)
    with pytest.raises(QboReauthRequired):
        client.read("Customer", "1")


def test_many_threads_on_one_expired_token_refresh_once() -> None:
    import threading

    refresher = CountingRefresher()
    tokens = InMemoryTokenProvider(token_set(), refresher)

    def handler(sent: Sent) -> Reply:
        if sent.headers["Authorization"] == f"Bearer {ACCESS}":
            return Reply(401, sample("fault_401_token_expired_response.json"))
        return Reply(body=CUSTOMER)

    client, _, _ = make_client(handler, tokens=tokens)
    errors: list[Exception] = []
    barrier = threading.Barrier(10)

    def work() -> None:
        try:
            barrier.wait(5)
            client.read("Customer", "7")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert errors == []
    assert len(refresher.calls) == 1


def test_proactive_refresh_near_expiry() -> None:
    refresher = CountingRefresher()
    tokens = InMemoryTokenProvider(token_set(hours=0.01), refresher, refresh_margin=300)
    client, adapter, _ = make_client(Script(Reply(body=CUSTOMER)), tokens=tokens)
    client.read("Customer", "7")
    assert len(refresher.calls) == 1
    assert adapter.sent[0].headers["Authorization"] == f"Bearer {ACCESS}-1"


@pytest.mark.parametrize(
    "failure",
    [
        Reply(503, b"<html>Service Unavailable</html>"),
        Reply(500, b'{"Fault":{"Error":[{"Message":"x","code":"10000"}],"type":"SystemFault"}}'),
        Reply(raise_exc=requests.ConnectionError("reset")),
        Reply(raise_exc=requests.ReadTimeout("lost")),
        Reply(200, b'{"Customer": {"Id": "7", "Disp'),  # cut short
    ],
)
def test_transient_failures_are_retried_with_the_same_request_id(failure: Reply) -> None:
    sleeps: list[float] = []
    client, adapter, _ = make_client(Script(failure, failure, Reply(body=CUSTOMER)), sleeps=sleeps)
    assert client.create("Customer", {"DisplayName": "Amy"}, request_id="same-1")["Id"] == "7"
    assert [s.params["requestid"] for s in adapter.sent] == ["same-1"] * 3
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] * 2  # backoff grows (equal jitter keeps it ordered)


def test_retries_are_bounded() -> None:
    sleeps: list[float] = []
    client, adapter, _ = make_client(
        Script(Reply(raise_exc=requests.ConnectionError("down"))), sleeps=sleeps, max_retries=3
    )
    with pytest.raises(QboTransportError) as info:
        client.read("Customer", "1")
    assert info.value.retryable
    assert len(adapter.sent) == 4 and len(sleeps) == 3


def test_garbage_body_ends_as_a_typed_error() -> None:
    client, adapter, _ = make_client(Script(Reply(200, b"\x00garbage")), max_retries=2)
    with pytest.raises(QboProtocolError):
        client.read("Customer", "1")
    assert len(adapter.sent) == 3


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (Reply(400, sample("fault_6240_duplicate_name_response.json")), QboDuplicateName),
        (
            Reply(400, b'{"Fault":{"Error":[{"Message":"Stale","code":"5010"}],"type":"ValidationFault"}}'),
            QboStaleObject,
        ),
        (Reply(400, b'{"Fault":{"Error":[{"Message":"Object Not Found","code":"610"}]}}'), QboNotFound),
        (Reply(200, b'{"Fault":{"Error":[{"Message":"Object Not Found","code":"610"}]},"time":"x"}'), QboNotFound),
    ],
)
def test_business_faults_are_not_retried(reply: Reply, cls: type) -> None:
    client, adapter, _ = make_client(Script(reply))
    with pytest.raises(cls) as info:
        client.create("Customer", {"DisplayName": "Amy"}, request_id="b-1")
    assert info.value.intuit_tid == "tid-test"
    assert len(adapter.sent) == 1


def test_429_penalizes_the_realm_and_retries() -> None:
    penalties: list[tuple[str, float]] = []

    class RecordingThrottle:
        from contextlib import nullcontext as _null

        def acquire(self, realm_id: str, kind: str = "request") -> Any:
            return self._null()

        def penalize(self, realm_id: str, seconds: float) -> None:
            penalties.append((realm_id, seconds))

    xml = sample("fault_429_throttle_exceeded.xml")
    client, adapter, _ = make_client(
        Script(Reply(429, xml), Reply(429, xml), Reply(body=CUSTOMER)),
        throttle=RecordingThrottle(),
        throttle_backoff=3.0,
        rng=lambda: 0.5,
    )
    client.create("Customer", {"DisplayName": "Amy"}, request_id="t-1")
    assert penalties == [("123", pytest.approx(3.3)), ("123", pytest.approx(3.3))]
    assert [s.params["requestid"] for s in adapter.sent] == ["t-1"] * 3


def test_429_retries_are_bounded_and_carry_the_wait() -> None:
    client, adapter, _ = make_client(
        Script(Reply(429, b"")), throttle_backoff=0.001, max_throttle_retries=2, rng=lambda: 0.0
    )
    with pytest.raises(QboRateLimited) as info:
        client.read("Customer", "1")
    assert info.value.wait_seconds == pytest.approx(0.001)
    assert len(adapter.sent) == 3


def _query_handler(total: int) -> Any:
    rows = [{"Id": str(i)} for i in range(1, total + 1)]

    def handler(sent: Sent) -> Reply:
        sql = sent.body
        start = int(sql.split("STARTPOSITION ")[1].split()[0])
        size = int(sql.split("MAXRESULTS ")[1].split()[0])
        page = rows[start - 1 : start - 1 + size]
        body: dict[str, Any] = {"QueryResponse": {}, "time": "t"}
        if page:
            body["QueryResponse"] = {"Customer": page, "startPosition": start, "maxResults": len(page)}
        return Reply(body=body)

    return handler


def test_query_all_paginates() -> None:
    client, adapter, _ = make_client(_query_handler(2500))
    ids = [r["Id"] for r in client.query_all("SELECT * FROM Customer ORDERBY Id")]
    assert ids == [str(i) for i in range(1, 2501)]
    assert len(adapter.sent) == 3
    assert adapter.sent[1].body.endswith("STARTPOSITION 1001 MAXRESULTS 1000")


def test_query_all_exact_multiple_and_empty() -> None:
    client, adapter, _ = make_client(_query_handler(2000))
    assert len(list(client.query_all("SELECT * FROM Customer"))) == 2000
    assert len(adapter.sent) == 3  # the third page is empty: {"QueryResponse": {}}
    client, _, _ = make_client(_query_handler(0))
    assert list(client.query_all("SELECT * FROM Customer")) == []


def test_query_all_refuses_paging_and_stops_loudly_at_max_pages() -> None:
    client, _, _ = make_client(_query_handler(50))
    with pytest.raises(ValueError):
        list(client.query_all("SELECT * FROM Customer MAXRESULTS 5"))
    with pytest.raises(QboSyncError):
        list(client.query_all("SELECT * FROM Customer", page_size=10, max_pages=2))


def test_count() -> None:
    client, adapter, _ = make_client(Script(Reply(body=sample("query_count_response.json"))))
    assert client.count("Customer", "Active = true") == 41
    assert adapter.sent[0].body == "SELECT COUNT(*) FROM Customer WHERE Active = true"
    assert adapter.sent[0].method == "POST"
    assert adapter.sent[0].headers["Content-Type"] == "application/text"


def test_batch_results_per_item() -> None:
    client, adapter, _ = make_client(Script(Reply(body=sample("batch_response.json"))))
    ops = [
        BatchOperation("bid1", "create", "Vendor", {"DisplayName": "Boraski Family Store"}),
        BatchOperation("bid2", "update", "Invoice", {"Id": "1", "SyncToken": "0", "sparse": True}),
        BatchOperation("bid3", "delete", "Invoice", {"Id": "2", "SyncToken": "0"}),
        BatchOperation("bid4", "query", query="select * from SalesReceipt"),
    ]
    results = client.batch(ops, request_id="batch-1")
    assert [r.bid for r in results] == ["bid1", "bid2", "bid3", "bid4"]
    assert results[0].ok and results[0].payload and results[0].payload["Id"] == "71"
    assert isinstance(results[1].error, QboNotFound)
    assert isinstance(results[2].error, QboStaleObject)
    assert results[3].query is not None and len(results[3].query.rows) == 2
    sent = adapter.sent[0]
    assert sent.params["requestid"] == "batch-1"
    assert sent.body["BatchItemRequest"][0] == {
        "bId": "bid1",
        "operation": "create",
        "Vendor": {"DisplayName": "Boraski Family Store"},
    }
    assert sent.body["BatchItemRequest"][3] == {"bId": "bid4", "Query": "select * from SalesReceipt"}


def test_batch_limits_and_missing_items() -> None:
    client, _, _ = make_client(Script(Reply(body={"BatchItemResponse": [], "time": "t"})))
    too_many = [BatchOperation(f"b{i}", "create", "Customer", {}) for i in range(31)]
    with pytest.raises(ValueError):
        client.batch(too_many, request_id="r")
    with pytest.raises(ValueError):
        client.batch([BatchOperation("b", "create", "Customer", {})] * 2, request_id="r")
    with pytest.raises(ValueError):
        client.batch([BatchOperation("b", "create", "Customer", {})], request_id="x" * 37)
    [result] = client.batch([BatchOperation("b1", "create", "Customer", {})], request_id="r")
    assert isinstance(result.error, QboProtocolError)


def test_company_info() -> None:
    client, adapter, _ = make_client(Script(Reply(body={"CompanyInfo": {"CompanyName": "Sandbox Co"}})))
    assert client.company_info()["CompanyName"] == "Sandbox Co"
    assert adapter.sent[0].path == "/v3/company/123/companyinfo/123"


# --- CDC ----------------------------------------------------------------------------------------------------

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _obj(i: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"Id": str(i), "MetaData": {"LastUpdatedTime": at.isoformat()}, **extra}


class FakeCdcServer:
    """Objects with update times; CDC answers are capped at ``cap`` (oldest first), queries are exact."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]], cap: int = 1000) -> None:
        self.objects = objects
        self.cap = cap
        self.cdc_calls: list[tuple[str, str]] = []
        self.queries: list[str] = []

    def __call__(self, sent: Sent) -> Reply:
        if sent.path.endswith("/cdc"):
            since = datetime.fromisoformat(sent.params["changedSince"])
            self.cdc_calls.append((sent.params["entities"], sent.params["changedSince"]))
            blocks = []
            left = self.cap
            for name in sent.params["entities"].split(","):
                found = [o for o in self.objects.get(name, []) if _at(o) >= since][:left]
                left -= len(found)
                blocks.append({name: found, "startPosition": 1, "maxResults": len(found)} if found else {})
            return Reply(body={"CDCResponse": [{"QueryResponse": blocks}], "time": NOW.isoformat()})
        sql = sent.body
        self.queries.append(sql)
        name = sql.split("FROM ")[1].split()[0]
        lo = datetime.fromisoformat(sql.split(">= '")[1].split("'")[0])
        hi = datetime.fromisoformat(sql.split("< '")[1].split("'")[0]) if "< '" in sql else None
        start = int(sql.split("STARTPOSITION ")[1].split()[0])
        size = int(sql.split("MAXRESULTS ")[1].split()[0])
        rows = [
            o
            for o in self.objects.get(name, [])
            if o.get("status") != "Deleted" and _at(o) >= lo and (hi is None or _at(o) < hi)
        ]
        page = rows[start - 1 : start - 1 + size]
        return Reply(body={"QueryResponse": {name: page} if page else {}, "time": "t"})


def _at(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["MetaData"]["LastUpdatedTime"])


def test_cdc_small_window_one_call_with_deleted_stubs() -> None:
    body = json.loads(sample("cdc_response_with_deleted.json"))
    client, adapter, _ = make_client(Script(Reply(body=body)), clock=lambda: NOW)
    result = client.cdc(["Customer", "Estimate"], NOW - timedelta(days=1))
    assert [o["Id"] for o in result.changed["Customer"]] == ["63", "99"]
    assert [o["Id"] for o in result.changed["Estimate"]] == ["34", "123"]
    assert [o["Id"] for o in result.deleted["Estimate"]] == ["979"]
    assert result.deletes_complete == {"Customer": True, "Estimate": True}
    assert adapter.sent[0].params["entities"] == "Customer,Estimate"
    assert adapter.sent[0].params["changedSince"] == (NOW - timedelta(days=1)).isoformat()


def test_cdc_older_than_30_days_falls_back_to_queries() -> None:
    since = NOW - timedelta(days=45)
    server = FakeCdcServer({"Customer": [_obj(i, since + timedelta(days=i)) for i in range(1, 40)]})
    client, _, _ = make_client(server, clock=lambda: NOW)
    result = client.cdc(["Customer"], since)
    assert server.cdc_calls == []
    assert len(result.changed["Customer"]) == 39
    assert result.deletes_complete["Customer"] is False


def test_cdc_at_cap_splits_per_entity_then_halves_the_window() -> None:
    since = NOW - timedelta(days=10)
    span = timedelta(days=10)
    customers = [_obj(i, since + span * (i / 2600)) for i in range(1, 2500)]
    customers.append(_obj(9999, NOW - timedelta(hours=1), status="Deleted", domain="QBO"))
    items = [_obj(i, since + timedelta(days=1)) for i in range(1, 30)]
    server = FakeCdcServer({"Customer": customers, "Item": items}, cap=1000)
    client, _, _ = make_client(server, clock=lambda: NOW)
    result = client.cdc(["Customer", "Item"], since)
    assert server.cdc_calls[0][0] == "Customer,Item"
    assert {c[0] for c in server.cdc_calls[1:]} == {"Customer", "Item"}
    assert sorted(int(o["Id"]) for o in result.changed["Customer"]) == list(range(1, 2500))
    assert len(result.changed["Item"]) == 29
    assert [o["Id"] for o in result.deleted["Customer"]] == ["9999"]
    assert result.deletes_complete["Item"] is True
    assert result.deletes_complete["Customer"] is False  # part of the window was read by queries
    assert server.queries and all("MetaData.LastUpdatedTime <" in q for q in server.queries)


def test_cdc_requires_aware_datetime_and_entities() -> None:
    client, _, _ = make_client(Script(Reply()))
    with pytest.raises(ValueError):
        client.cdc(["Customer"], datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        client.cdc([], NOW)


# --- logging ------------------------------------------------------------------------------------------------


def test_no_log_record_contains_a_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    refresher = CountingRefresher()
    script = Script(
        Reply(401, sample("fault_401_token_expired_response.json")),
        Reply(429, sample("fault_429_throttle_exceeded.xml")),
        Reply(raise_exc=requests.ConnectionError(f"Bearer {ACCESS}-1 reset")),
        Reply(body=CUSTOMER),
    )
    client, _, tokens = make_client(script, refresher=refresher, throttle_backoff=0.001)
    client.create("Customer", {"DisplayName": "Amy"}, request_id="log-1")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "realm 123" in text and "intuit_tid=tid-test" in text
    secrets = [ACCESS, REFRESH, tokens.tokens.access_token, tokens.tokens.refresh_token, "AB01601390262kxzx"]
    for secret in secrets:
        assert secret not in text
    assert "Bearer" not in text and "Authorization" not in text
    assert ACCESS not in repr(tokens.tokens) and ACCESS not in repr(client)


def test_client_validates_its_arguments() -> None:
    tokens = InMemoryTokenProvider(token_set())
    with pytest.raises(ValueError):
        QboClient("", api_base_url="http://x", tokens=tokens)
    client = QboClient("9", api_base_url="http://x/v3/", tokens=tokens)
    assert client.api_base_url == "http://x"
    with pytest.raises(ValueError):
        client.read("Customer; DROP", "1")
    client.close()


def test_server_error_is_raised_after_retries() -> None:
    client, adapter, _ = make_client(Script(Reply(502, b"<html>bad gateway</html>")), max_retries=1)
    with pytest.raises(QboServerError):
        client.read("Customer", "1")
    assert len(adapter.sent) == 2
