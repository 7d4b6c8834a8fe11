"""The QuickBooks Online Accounting API client for one realm (company).

What it takes care of, so that callers do not:

* one ``requests.Session`` per realm (given, typically from a :class:`~qbo_sync.client.sessions.SessionPool`, or
  built and owned by the client: :meth:`QboClient.close` closes only what it owns), its connection pool sized to the
  concurrency limit, timeouts on every call;
* ``minorversion`` and ``Accept: application/json`` on every call;
* the bearer token from a :class:`~qbo_sync.client.tokens.TokenProvider`, refreshed once on a 401;
* a slot from a :class:`~qbo_sync.client.throttle.Throttle` before every call, and a realm-wide pause after a
  429;
* bounded retries with jittered exponential backoff for 429, 5xx, timeouts, connection errors and garbled
  answers. Every write takes a caller-supplied ``request_id`` sent as ``requestid``: a retry after a response
  lost in transit is answered with the original result instead of creating a second record. The id must be
  derived from the unit of work (the queue item), not from the attempt;
* typed errors (:mod:`qbo_sync.exceptions`) parsed from every fault shape QBO uses;
* query pagination, CDC with its 30-day and 1,000-object limits, and batch with per-item results.

It returns plain dicts and dataclasses and imports nothing from the ORM.

Logging names realm, entity, QBO id and Intuit's ``intuit_tid``; it never logs tokens or headers.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import requests

from qbo_sync.client.errors import error_from_fault, error_from_response
from qbo_sync.client.query import has_paging, quote_value
from qbo_sync.client.sessions import new_session
from qbo_sync.client.throttle import RequestKind, Throttle, default_throttle
from qbo_sync.client.tokens import TokenProvider
from qbo_sync.exceptions import (
    QboApiError,
    QboAuthError,
    QboProtocolError,
    QboRateLimited,
    QboReauthRequired,
    QboSyncError,
    QboTransportError,
)

__all__ = [
    "CDC_MAX_LOOKBACK",
    "CDC_OBJECT_CAP",
    "MAX_BATCH_ITEMS",
    "BatchOperation",
    "BatchResult",
    "CdcResult",
    "QboClient",
    "QueryPage",
    "backoff_delay",
]

logger = logging.getLogger(__name__)

MAX_BATCH_ITEMS = 30
MAX_PAGE_SIZE = 1000
CDC_OBJECT_CAP = 1000
CDC_MAX_LOOKBACK = timedelta(days=30)
_REQUEST_ID_MAX = 50
_BATCH_REQUEST_ID_MAX = 36
_BATCH_BID_MAX = 10
_ENTITY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, with "equal jitter".

    Half the delay is fixed and half random, so clients that failed together do not come back together, and no
    retry comes back immediately.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + rng() * ceiling / 2


def throttle_delay(wait_seconds: float, *, rng: Callable[[], float] = random.random) -> float:
    """Delay after a 429: what QBO asked for plus up to 20% jitter (never less than asked)."""
    return wait_seconds * (1 + 0.2 * rng())


@dataclass
class QueryPage:
    """One page of a query answer. ``rows`` is empty (never missing) when nothing matched."""

    entity: str | None
    rows: list[dict[str, Any]]
    start_position: int | None = None
    max_results: int | None = None
    total_count: int | None = None


@dataclass
class CdcResult:
    """Changes since ``changed_since``, per entity name as requested.

    ``changed`` holds full objects (latest state, one per Id); ``deleted`` holds the stubs QBO returns for
    deleted objects. ``deletes_complete`` is False for entities whose window had to be read (partly) with
    queries, which cannot see deletions: reconcile those another way. ``until`` is this client's clock read
    before the first call; use it as the next cursor, minus an overlap for clock skew (merging is idempotent).
    """

    changed_since: datetime
    until: datetime
    changed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deletes_complete: dict[str, bool] = field(default_factory=dict)
    cdc_calls: int = 0
    query_calls: int = 0


BatchVerb = Literal["create", "update", "delete", "void", "query"]


@dataclass(frozen=True)
class BatchOperation:
    """One item of a batch. ``payload`` is the entity body for writes; ``query`` the SQL for query items."""

    bid: str
    operation: BatchVerb
    entity: str | None = None
    payload: Mapping[str, Any] | None = None
    query: str | None = None

    def to_item(self) -> dict[str, Any]:
        if self.operation == "query":
            if not self.query:
                raise ValueError(f"batch item {self.bid}: query operation needs query text")
            return {"bId": self.bid, "Query": self.query}
        if not self.entity or self.payload is None:
            raise ValueError(f"batch item {self.bid}: {self.operation} needs entity and payload")
        return {"bId": self.bid, "operation": self.operation, _entity_key(self.entity): dict(self.payload)}


@dataclass
class BatchResult:
    """Outcome of one batch item: one of ``payload`` (writes), ``query`` (query items) or ``error``."""

    bid: str
    entity: str | None = None
    payload: dict[str, Any] | None = None
    query: QueryPage | None = None
    error: QboApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _entity_key(entity: str) -> str:
    """``"customer"`` -> ``"Customer"``; names already capitalised (``"CompanyInfo"``) are kept."""
    if not _ENTITY_RE.match(entity):
        raise ValueError(f"not a QBO entity name: {entity!r}")
    return entity[0].upper() + entity[1:]


def _unwrap(data: Mapping[str, Any], entity: str) -> dict[str, Any]:
    """The entity object out of ``{"Customer": {...}, "time": ...}`` (key matched case-insensitively)."""
    wanted = entity.lower()
    for key, value in data.items():
        if key.lower() == wanted and isinstance(value, dict):
            return value
    raise QboProtocolError(f"response has no {entity} object", detail=", ".join(sorted(map(str, data))))


def _parse_qbo_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _updated_at(obj: Mapping[str, Any]) -> datetime | None:
    meta = obj.get("MetaData")
    return _parse_qbo_time(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def _page_from(response: Mapping[str, Any]) -> QueryPage:
    entity: str | None = None
    rows: list[dict[str, Any]] = []
    for key, value in response.items():
        if isinstance(value, list):
            entity, rows = key, [r for r in value if isinstance(r, dict)]
            break

    def as_int(key: str) -> int | None:
        value = response.get(key)
        return int(value) if isinstance(value, int | str) and str(value).isdigit() else None

    return QueryPage(
        entity=entity,
        rows=rows,
        start_position=as_int("startPosition"),
        max_results=as_int("maxResults"),
        total_count=as_int("totalCount"),
    )


def _check_request_id(request_id: str, limit: int = _REQUEST_ID_MAX) -> str:
    if not isinstance(request_id, str) or not request_id.strip():
        raise ValueError("writes need a request_id derived from the unit of work (it makes retries safe)")
    if len(request_id) > limit:
        raise ValueError(f"request_id is longer than QBO's {limit} characters")
    return request_id


#: Entities QBO deactivates instead of deleting; plain queries return only their active records.
NAME_LIST_ENTITIES = frozenset(
    {"Customer", "Item", "Vendor", "Employee", "Account", "Class", "Department", "Term", "PaymentMethod", "TaxCode"}
)


class QboClient:
    """Talks to the QBO Accounting API for one realm. Thread-safe; create one per realm and reuse it."""

    def __init__(
        self,
        realm_id: str,
        *,
        api_base_url: str,
        tokens: TokenProvider,
        throttle: Throttle | None = None,
        minor_version: int = 75,
        timeout: float | tuple[float, float] = (5, 60),
        max_retries: int = 5,
        max_throttle_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        throttle_backoff: float = 60.0,
        pool_size: int = 10,
        session: requests.Session | None = None,
        owns_session: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not realm_id or not str(realm_id).strip():
            raise ValueError("realm_id is required")
        self.realm_id = str(realm_id)
        base = api_base_url.rstrip("/")
        if base.endswith("/v3"):
            base = base[: -len("/v3")]
        self.api_base_url = base
        self._company_url = f"{base}/v3/company/{quote(self.realm_id, safe='')}"
        self.tokens = tokens
        self.throttle: Throttle = throttle if throttle is not None else default_throttle()
        self.minor_version = minor_version
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_throttle_retries = max_throttle_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.throttle_backoff = throttle_backoff
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        #: True when the client built its session (no ``session`` given) or was handed it with
        #: ``owns_session=True``: :meth:`close` then closes it. A shared session (a pool's) is never closed here.
        self.owns_session = session is None if owns_session is None else owns_session
        self.session = session if session is not None else new_session(pool_size)
        self.closed = False

    def __repr__(self) -> str:
        return f"QboClient(realm_id={self.realm_id!r}, api_base_url={self.api_base_url!r})"

    def close(self) -> None:
        """Done with this client: its own session is closed (its connections dropped); a shared one is left to its
        pool and the other clients using it. Either way the client refuses to send anything more."""
        self.closed = True
        if self.owns_session:
            self.session.close()

    def __enter__(self) -> QboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- entities ------------------------------------------------------------------------------------------

    def read(self, entity: str, id: str) -> dict[str, Any]:
        """The object ``entity``/``id``; :class:`~qbo_sync.exceptions.QboNotFound` if there is none."""
        key = _entity_key(entity)
        data = self._request("GET", f"/{key.lower()}/{quote(str(id), safe='')}", entity=key, qbo_id=str(id))
        return _unwrap(data, key)

    def create(self, entity: str, payload: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        key = _entity_key(entity)
        data = self._request(
            "POST",
            f"/{key.lower()}",
            json_body=dict(payload),
            request_id=_check_request_id(request_id),
            entity=key,
        )
        return _unwrap(data, key)

    def update(self, entity: str, payload: Mapping[str, Any], request_id: str, sparse: bool = True) -> dict[str, Any]:
        """Update; ``payload`` needs ``Id`` and the current ``SyncToken``.

        Sparse by default: only the fields sent change.
        """
        key = _entity_key(entity)
        if "Id" not in payload or "SyncToken" not in payload:
            raise ValueError("update payload needs Id and SyncToken")
        body = {**payload, "sparse": sparse}
        data = self._request(
            "POST",
            f"/{key.lower()}",
            json_body=body,
            request_id=_check_request_id(request_id),
            entity=key,
            qbo_id=str(payload["Id"]),
        )
        return _unwrap(data, key)

    def void(self, entity: str, id: str, sync_token: str, request_id: str) -> dict[str, Any]:
        """Void a transaction (it stays, zeroed). Returns the voided object."""
        return self._operation("void", entity, id, sync_token, request_id)

    def delete(self, entity: str, id: str, sync_token: str, request_id: str) -> dict[str, Any]:
        """Hard-delete a transaction. Returns QBO's stub ``{"status": "Deleted", "Id": ...}``.

        Name-list entities (Customer, Item...) cannot be deleted: update them with ``Active: False``.
        """
        return self._operation("delete", entity, id, sync_token, request_id)

    def _operation(
        self, operation: Literal["void", "delete"], entity: str, id: str, sync_token: str, request_id: str
    ) -> dict[str, Any]:
        key = _entity_key(entity)
        data = self._request(
            "POST",
            f"/{key.lower()}",
            params={"operation": operation},
            json_body={"Id": str(id), "SyncToken": str(sync_token)},
            request_id=_check_request_id(request_id),
            entity=key,
            qbo_id=str(id),
        )
        return _unwrap(data, key)

    def company_info(self) -> dict[str, Any]:
        data = self._request("GET", f"/companyinfo/{quote(self.realm_id, safe='')}", entity="CompanyInfo")
        return _unwrap(data, "CompanyInfo")

    # --- queries -------------------------------------------------------------------------------------------

    def query(self, sql: str) -> QueryPage:
        """Run one query as written (one page: QBO returns at most MAXRESULTS, default 100, max 1000 rows)."""
        # POST with a text body (as QBO documents) so that long IN lists never hit URL length limits.
        data = self._request("POST", "/query", text_body=sql, entity=_query_entity(sql))
        response = data.get("QueryResponse")
        if not isinstance(response, Mapping):
            raise QboProtocolError("query response has no QueryResponse")
        return _page_from(response)

    def query_all(
        self, select_without_paging: str, page_size: int = MAX_PAGE_SIZE, max_pages: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every row of a query, fetched page by page with STARTPOSITION/MAXRESULTS.

        Give an ORDERBY for stable pages when rows may change meanwhile. Stops with :class:`QboSyncError`
        rather than silently truncating when ``max_pages`` full pages did not reach the end.
        """
        if has_paging(select_without_paging):
            raise ValueError("query_all adds STARTPOSITION/MAXRESULTS itself; leave them out")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        sql = select_without_paging.rstrip().rstrip(";")
        start = 1
        for _ in range(max_pages):
            page = self.query(f"{sql} STARTPOSITION {start} MAXRESULTS {page_size}")
            yield from page.rows
            if len(page.rows) < page_size:
                return
            start += page_size
        raise QboSyncError(f"query_all: more than {max_pages} pages of {page_size} rows; narrow the query")

    def count(self, entity: str, where: str | None = None) -> int:
        """``SELECT COUNT(*) FROM entity [WHERE where]``; build ``where`` with :func:`quote_value`."""
        key = _entity_key(entity)
        # Not SQL: QBO's query language, and `where` is the caller's, built with quote_value().
        sql = f"SELECT COUNT(*) FROM {key}" + (f" WHERE {where}" if where else "")  # noqa: S608
        page = self.query(sql)
        if page.total_count is None:
            raise QboProtocolError("COUNT(*) answer has no totalCount")
        return page.total_count

    # --- change data capture -------------------------------------------------------------------------------

    def cdc(
        self,
        entities: Sequence[str],
        changed_since: datetime,
        *,
        min_window: timedelta = timedelta(seconds=1),
    ) -> CdcResult:
        """Objects of ``entities`` changed since ``changed_since`` (aware datetime), within QBO's limits.

        * Older than 30 days: CDC refuses, so the window is read with paginated ``MetaData.LastUpdatedTime``
          queries (deletions cannot be seen that way: ``deletes_complete`` False).
        * An answer at the 1,000-object cap may be truncated. With several entities the call is first split
          per entity. For one entity the window [since, now] is halved: CDC from the midpoint gives the later
          half (split again if it is still at the cap); CDC has no upper bound, so the earlier half [since,
          mid) is read with paginated LastUpdatedTime queries, plus whatever deleted stubs the capped answer
          carried.
        """
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must be timezone-aware")
        names = [_entity_key(e) for e in entities]
        if not names:
            raise ValueError("cdc needs at least one entity")
        now = self._clock()
        result = CdcResult(changed_since=changed_since, until=now)
        for name in names:
            result.changed[name], result.deleted[name], result.deletes_complete[name] = [], [], True
        # A little margin so the window is still inside 30 days when QBO checks it.
        if now - changed_since > CDC_MAX_LOOKBACK - timedelta(minutes=5):
            logger.info(
                "QBO CDC realm %s: window starts %s, older than 30 days; reading with queries",
                self.realm_id,
                changed_since.isoformat(),
            )
            for name in names:
                self._cdc_by_query(result, name, changed_since, None)
            return result
        self._cdc_window(result, names, changed_since, now, min_window)
        return result

    def _cdc_call(
        self, names: Sequence[str], since: datetime
    ) -> tuple[dict[str, list[dict[str, Any]]], datetime | None]:
        data = self._request(
            "GET",
            "/cdc",
            params={"entities": ",".join(names), "changedSince": since.isoformat(timespec="seconds")},
            entity=",".join(names),
        )
        by_entity: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        lower = {n.lower(): n for n in names}
        cdc = data.get("CDCResponse")
        if not isinstance(cdc, list):
            raise QboProtocolError("CDC response has no CDCResponse list")
        for block in cdc:
            responses = block.get("QueryResponse") if isinstance(block, Mapping) else None
            if isinstance(responses, Mapping):
                responses = [responses]
            for response in responses or []:
                if not isinstance(response, Mapping):
                    continue
                for key, value in response.items():
                    if isinstance(value, list) and key.lower() in lower:
                        by_entity[lower[key.lower()]].extend(v for v in value if isinstance(v, dict))
        return by_entity, _parse_qbo_time(data.get("time"))

    def _cdc_window(
        self, result: CdcResult, names: Sequence[str], since: datetime, until: datetime, min_window: timedelta
    ) -> None:
        found, _server_time = self._cdc_call(names, since)
        result.cdc_calls += 1
        total = sum(len(v) for v in found.values())
        if total < CDC_OBJECT_CAP:
            for name, objects in found.items():
                _merge_objects(result, name, objects)
            return
        if len(names) > 1:
            logger.info("QBO CDC realm %s: %s objects at the cap; splitting per entity", self.realm_id, total)
            for name in names:
                self._cdc_window(result, [name], since, until, min_window)
            return
        name = names[0]
        span = until - since
        if span <= min_window:
            logger.warning(
                "QBO CDC realm %s entity %s: still at the cap for a %ss window; reading it with queries",
                self.realm_id,
                name,
                span.total_seconds(),
            )
            self._cdc_by_query(result, name, since, None)
            _merge_deleted_stubs(result, name, found[name], before=None)
            return
        # Whole seconds: QBO's timestamps have no fractions, and the CDC call and the query must agree on mid.
        mid = (since + span / 2).replace(microsecond=0)
        if mid <= since:
            self._cdc_by_query(result, name, since, None)
            _merge_deleted_stubs(result, name, found[name], before=None)
            return
        logger.info(
            "QBO CDC realm %s entity %s: at the cap; halving window at %s",
            self.realm_id,
            name,
            mid.isoformat(),
        )
        self._cdc_window(result, [name], mid, until, min_window)
        self._cdc_by_query(result, name, since, mid)
        _merge_deleted_stubs(result, name, found[name], before=mid)

    def _cdc_by_query(self, result: CdcResult, name: str, since: datetime, before: datetime | None) -> None:
        where = f"MetaData.LastUpdatedTime >= {quote_value(since)}"
        if before is not None:
            where += f" AND MetaData.LastUpdatedTime < {quote_value(before)}"
        if name in NAME_LIST_ENTITIES:
            # A query sees only active name-list records unless asked; CDC sees deactivations too.
            where += " AND Active IN (true, false)"
        sql = f"SELECT * FROM {name} WHERE {where} ORDERBY MetaData.LastUpdatedTime"  # noqa: S608 - quoted above
        pages_before = result.query_calls
        rows = list(self.query_all(sql))
        result.query_calls = pages_before + max(1, -(-len(rows) // MAX_PAGE_SIZE))
        _merge_objects(result, name, rows)
        result.deletes_complete[name] = False

    # --- batch ---------------------------------------------------------------------------------------------

    def batch(self, operations: Sequence[BatchOperation], request_id: str) -> list[BatchResult]:
        """Up to 30 operations in one call; one :class:`BatchResult` per operation, in the order given.

        A failing item does not fail the call: its result carries a typed error. QBO does not guarantee the
        execution order and items cannot refer to each other.
        """
        if not operations:
            return []
        if len(operations) > MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds at most {MAX_BATCH_ITEMS} operations")
        _check_request_id(request_id, _BATCH_REQUEST_ID_MAX)
        bids = [op.bid for op in operations]
        if len(set(bids)) != len(bids):
            raise ValueError("bIds must be unique within a batch")
        if any(not b or len(b) > _BATCH_BID_MAX for b in bids):
            raise ValueError(f"bIds must be 1..{_BATCH_BID_MAX} characters when a requestid is sent")
        body = {"BatchItemRequest": [op.to_item() for op in operations]}
        data, tid = self._request_with_tid(
            "POST", "/batch", json_body=body, request_id=request_id, kind="batch", entity="batch"
        )
        items = data.get("BatchItemResponse")
        if not isinstance(items, list):
            raise QboProtocolError("batch response has no BatchItemResponse list", intuit_tid=tid)
        by_bid = {str(i.get("bId")): i for i in items if isinstance(i, Mapping)}
        results: list[BatchResult] = []
        for op in operations:
            item = by_bid.get(op.bid)
            results.append(self._batch_result(op, item, tid))
        failed = [r for r in results if r.error is not None]
        if failed:
            logger.info(
                "QBO batch realm %s: %s of %s items failed (%s) intuit_tid=%s",
                self.realm_id,
                len(failed),
                len(results),
                ", ".join(f"{r.bid}:{r.error.code if r.error else ''}" for r in failed[:10]),
                tid,
            )
        return results

    def _batch_result(self, op: BatchOperation, item: Mapping[str, Any] | None, tid: str | None) -> BatchResult:
        entity = _entity_key(op.entity) if op.entity else None
        if item is None:
            return BatchResult(
                op.bid, entity, error=QboProtocolError(f"batch answer has no item {op.bid}", intuit_tid=tid)
            )
        fault = item.get("Fault")
        if isinstance(fault, Mapping):
            return BatchResult(op.bid, entity, error=error_from_fault(fault, status=200, intuit_tid=tid))
        if op.operation == "query":
            response = item.get("QueryResponse")
            if isinstance(response, Mapping):
                return BatchResult(op.bid, None, query=_page_from(response))
        elif entity is not None:
            for key, value in item.items():
                if key.lower() == entity.lower() and isinstance(value, dict):
                    return BatchResult(op.bid, entity, payload=value)
        return BatchResult(
            op.bid,
            entity,
            error=QboProtocolError(f"batch item {op.bid} has neither a result nor a Fault", intuit_tid=tid),
        )

    # --- transport -----------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._request_with_tid(method, path, **kwargs)[0]

    def _request_with_tid(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        text_body: str | None = None,
        request_id: str | None = None,
        kind: RequestKind = "request",
        entity: str | None = None,
        qbo_id: str | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        if self.closed:
            raise RuntimeError(f"{self!r} is closed; make a new client (services: client_for).")
        url = f"{self._company_url}{path}"
        query: dict[str, str] = dict(params or {})
        if request_id is not None:
            query["requestid"] = request_id
        query["minorversion"] = str(self.minor_version)
        body: bytes | None = None
        content_type = None
        if json_body is not None:
            body, content_type = json.dumps(json_body, separators=(",", ":")).encode(), "application/json"
        elif text_body is not None:
            body, content_type = text_body.encode("utf-8"), "application/text"
        attempt = 0  # retries spent on errors other than 429
        throttled = 0  # retries spent on 429
        refreshed = False
        access = self.tokens.access_token()
        while True:
            error, data, tid, status = self._attempt(method, url, query, body, content_type, kind, access)
            if error is None:
                assert data is not None
                logger.debug(
                    "QBO %s %s realm %s entity %s id %s -> %s intuit_tid=%s",
                    method,
                    path,
                    self.realm_id,
                    entity,
                    qbo_id,
                    status,
                    tid,
                )
                return data, tid
            if isinstance(error, QboAuthError) and status == 401 and not isinstance(error, QboReauthRequired):
                if refreshed:
                    self._log_failure(method, path, entity, qbo_id, error, "after a token refresh")
                    raise error
                refreshed = True
                logger.info(
                    "QBO 401 realm %s entity %s id %s intuit_tid=%s: refreshing the access token once",
                    self.realm_id,
                    entity,
                    qbo_id,
                    tid,
                )
                access = self.tokens.refresh(access)
                continue
            if isinstance(error, QboRateLimited) and error.status is None:
                # The local limiter already waited its (long) bound: hand the decision back to the caller.
                self._log_failure(method, path, entity, qbo_id, error, "no throttle slot")
                raise error
            if isinstance(error, QboRateLimited):
                throttled += 1
                asked = error.wait_seconds if error.wait_seconds is not None else self.throttle_backoff
                delay = throttle_delay(asked, rng=self._rng)
                error.wait_seconds = delay
                self.throttle.penalize(self.realm_id, delay)
                exhausted = throttled > self.max_throttle_retries
            else:
                attempt += 1
                delay = backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)
                exhausted = attempt > self.max_retries
            if not error.retryable or exhausted:
                self._log_failure(
                    method, path, entity, qbo_id, error, "giving up" if error.retryable else "not retryable"
                )
                raise error
            logger.warning(
                "QBO %s %s realm %s entity %s id %s requestid %s intuit_tid=%s: %s (%s); retry in %.2fs",
                method,
                path,
                self.realm_id,
                entity,
                qbo_id,
                request_id,
                error.intuit_tid,
                type(error).__name__,
                error.code or error.status,
                delay,
            )
            if not isinstance(error, QboRateLimited):
                self._sleep(delay)
            # After a 429 the throttle's penalty makes acquire() wait, for every thread of the realm at once.
            access = self.tokens.access_token()

    def _attempt(
        self,
        method: str,
        url: str,
        query: Mapping[str, str],
        body: bytes | None,
        content_type: str | None,
        kind: RequestKind,
        access: str,
    ) -> tuple[QboApiError | None, dict[str, Any] | None, str | None, int | None]:
        headers = {"Authorization": f"Bearer {access}", "Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            with self.throttle.acquire(self.realm_id, kind):
                response = self.session.request(
                    method, url, params=query, data=body, headers=headers, timeout=self.timeout
                )
        except QboRateLimited as exc:  # the local limiter could not grant a slot in time
            return exc, None, None, None
        except _TRANSIENT as exc:
            # Only the exception type: its message can quote the URL with query text; keep logs short.
            return QboTransportError(f"{type(exc).__name__} from QuickBooks Online"), None, None, None
        except requests.RequestException as exc:  # bad URL, bad proxy settings...: retrying cannot help
            return (
                QboTransportError(f"{type(exc).__name__} calling QuickBooks Online", retryable=False),
                None,
                None,
                None,
            )
        status = response.status_code
        tid = response.headers.get("intuit_tid") or response.headers.get("intuit-tid")
        content = response.content
        if 200 <= status < 300:
            try:
                data = json.loads(content)
            except (ValueError, UnicodeDecodeError):
                if content.lstrip().startswith(b"<"):
                    # A 200 carrying an XML fault (QBO has sent throttle faults this way).
                    err = error_from_response(status, content, headers=response.headers, intuit_tid=tid)
                    if not isinstance(err, QboProtocolError):
                        return err, None, tid, status
                return (
                    QboProtocolError(
                        "Unreadable response from QuickBooks Online",
                        status=status,
                        detail=content[:200].decode("utf-8", errors="replace"),
                        intuit_tid=tid,
                        retryable=True,
                    ),
                    None,
                    tid,
                    status,
                )
            if not isinstance(data, dict):
                return (
                    QboProtocolError(
                        "QBO answered JSON that is not an object",
                        status=status,
                        intuit_tid=tid,
                        retryable=True,
                    ),
                    None,
                    tid,
                    status,
                )
            if isinstance(data.get("Fault"), Mapping) or isinstance(data.get("fault"), Mapping):
                return (
                    error_from_response(status, content, headers=response.headers, intuit_tid=tid),
                    None,
                    tid,
                    status,
                )
            return None, data, tid, status
        return (
            error_from_response(status, content, headers=response.headers, intuit_tid=tid),
            None,
            tid,
            status,
        )

    def _log_failure(
        self, method: str, path: str, entity: str | None, qbo_id: str | None, error: QboApiError, why: str
    ) -> None:
        logger.warning(
            "QBO %s %s realm %s entity %s id %s failed (%s): %s code=%s element=%s intuit_tid=%s",
            method,
            path,
            self.realm_id,
            entity,
            qbo_id,
            why,
            type(error).__name__,
            error.code,
            error.element,
            error.intuit_tid,
        )


# Failures after which the same request may well succeed (a write may have been committed: same requestid).
_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _query_entity(sql: str) -> str | None:
    match = re.search(r"\bFROM\s+([A-Za-z]+)", sql, re.IGNORECASE)
    return match.group(1) if match else None


def _merge_objects(result: CdcResult, name: str, objects: Iterable[dict[str, Any]]) -> None:
    """Add objects to the result, one per Id, keeping the most recently updated; stubs go to ``deleted``."""
    changed = {o.get("Id"): o for o in result.changed.setdefault(name, [])}
    deleted = {o.get("Id"): o for o in result.deleted.setdefault(name, [])}
    for obj in objects:
        oid = obj.get("Id")
        if str(obj.get("status", "")).lower() == "deleted":
            deleted[oid] = obj
            changed.pop(oid, None)
            continue
        if oid in deleted:
            continue  # deleted after this version was read
        current = changed.get(oid)
        if current is None:
            changed[oid] = obj
            continue
        new_t, old_t = _updated_at(obj), _updated_at(current)
        if new_t is not None and (old_t is None or new_t >= old_t):
            changed[oid] = obj
    result.changed[name] = list(changed.values())
    result.deleted[name] = list(deleted.values())


def _merge_deleted_stubs(
    result: CdcResult, name: str, objects: Iterable[dict[str, Any]], *, before: datetime | None
) -> None:
    stubs = [
        o
        for o in objects
        if str(o.get("status", "")).lower() == "deleted" and (before is None or (_updated_at(o) or before) < before)
    ]
    if stubs:
        _merge_objects(result, name, stubs)
