"""``/batch``: up to ``batch_size`` independent items, each answered (or faulted) on its own."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from .. import entities, query
from ..store import Realm
from ..util import QBOError, dumps, fmt_time, loads, required, unsupported
from .base import Answer, ApiCall, unsupported_path

if TYPE_CHECKING:
    from ..handler import Handler

ITEM_KEYS = ("bId", "operation", "optionsData")  # what a batch item holds besides its one entity


def items_of(body: bytes) -> list:
    """The ``BatchItemRequest`` list of a body ([] when there is none)."""
    try:
        data = loads(body) if body else None
    except ValueError:
        return []
    items = data.get("BatchItemRequest") if isinstance(data, dict) else None
    return items if isinstance(items, list) else []


def handle(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    if call.method != "POST":
        raise unsupported_path(h, call.path)
    sb = h.sandbox
    items = items_of(call.body)
    if not items:
        raise required("BatchItemRequest")
    limit = int(sb.opt(realm, "batch_size") or 30)
    if len(items) > limit:
        raise QBOError("1001", "Batch size limit exceeded",
                       f"The batch request has {len(items)} items; the maximum is {limit}.")
    requestid = call.params.get("requestid")
    if requestid and len(requestid) > 36:
        raise QBOError("2010", "Request has invalid or unsupported property",
                       "requestid for a batch request is longer than 36 characters")
    lat = sb.opt(realm, "latency_ms")
    out: list[dict] = []
    events: list = []
    committed = False
    for item in items:
        if lat:
            time.sleep(random.uniform(*lat) / 5000.0 / sb.options["time_scale"])
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        key = f"{requestid}:{bid}" if requestid and bid else None
        with realm.lock:
            if key and key in realm.batch_items:
                realm.stats["deduplicated"] += 1
                out.append(realm.batch_items[key])
                continue
            resp, evs, wrote = _item(h, realm, item, bid)
            # serialise now: later items must not change what this item returned
            resp = json.loads(dumps(resp))
            if key and "Fault" not in resp and wrote:
                realm.remember_item(key, resp)
        out.append(resp)
        events += evs
        committed = committed or wrote
    return 200, dumps({"BatchItemResponse": out, "time": fmt_time(sb.clock.time())}), committed, events


def _item(h: Handler, realm: Realm, item: Any, bid: str) -> tuple[dict, list, bool]:
    try:
        if not isinstance(item, dict):
            raise QBOError("2010", "Request has invalid or unsupported property", "Invalid batch item")
        if "Query" in item:
            return {"bId": bid, "QueryResponse": query.execute(realm, str(item["Query"]))}, [], False
        etypes = [k for k in item if k not in ITEM_KEYS]
        if len(etypes) != 1:
            raise QBOError("2010", "Request has invalid or unsupported property", "Invalid batch item")
        etype = etypes[0]
        if etype not in entities.KNOWN:
            raise unsupported(f"Operation {item.get('operation', 'create')} is not supported for {etype}.")
        op_name = str(item.get("operation") or "create").lower()
        ops = {"create": entities.create, "update": entities.update, "delete": entities.delete,
               "void": entities.void}
        if op_name not in ops:
            raise unsupported(f"Operation {op_name} is not supported.")
        include = frozenset(v.strip().lower() for v in str(item.get("optionsData") or "").split(",")
                            if v.strip())
        rtype, obj, events = ops[op_name](realm, etype, item[etype], h.sandbox.clock.time(), include)
        realm.stats["requests"][f"batch_{op_name}"] += 1
        return {"bId": bid, rtype: obj}, events, True
    except QBOError as err:
        return {"bId": bid, "Fault": err.fault()}, [], False
