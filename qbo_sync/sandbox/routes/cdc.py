"""``/cdc``: change data capture since a moment (30 days back at most, 1,000 objects a call)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import query
from ..store import NOT_IN_CDC, Realm
from ..util import QBOError, dumps, fmt_meta, fmt_time, parse_datetime, required, unsupported
from .base import Answer, ApiCall

if TYPE_CHECKING:
    from ..handler import Handler

CDC_LOOKBACK = 30 * 86400
CDC_MAX = 1000


def handle(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    sb = h.sandbox
    params = call.params
    names = params.get("entities")
    since_text = params.get("changedSince")
    if not names:
        raise required("entities")
    if not since_text:
        raise required("changedSince")
    try:
        since = int(parse_datetime(since_text))
    except ValueError:
        raise QBOError("2010", "Request has invalid or unsupported property",
                       f"Invalid changedSince: {since_text}") from None
    now = sb.clock.time()
    if now - since > CDC_LOOKBACK:
        raise unsupported(f"Operation cdc with changedSince date {since_text} which is older than fixed days "
                          "is not supported.")
    wanted: list[str] = []
    for name in names.split(","):
        etype = query.ENTITY_NAMES.get(name.strip().lower())
        if etype is None:
            raise QBOError("4001", "Invalid query", f"QueryValidationError: invalid entity: {name.strip()}")
        if etype in NOT_IN_CDC:
            raise unsupported(f"Operation cdc is not supported for {etype}.")
        if etype not in wanted:
            wanted.append(etype)
    with realm.lock:
        found: list[tuple[float, str, int, dict]] = []  # (ts, etype, live=0/deleted=1, obj)
        for etype in wanted:
            for obj in realm.entities[etype].values():
                if int(obj.get("_upd", 0)) >= since:
                    found.append((obj["_upd"], etype, 0, obj))
            for dtype, oid, ts in realm.deleted:
                if dtype == etype and int(ts) >= since:
                    stub = {"domain": "QBO", "status": "Deleted", "Id": oid,
                            "MetaData": {"LastUpdatedTime": fmt_meta(ts)}}
                    found.append((ts, etype, 1, stub))
        found.sort(key=lambda x: x[0])
        found = found[:CDC_MAX]
        groups = []
        for etype in wanted:
            objs = [o for ts, t, dead, o in sorted((f for f in found if f[1] == etype),
                                                   key=lambda f: (f[2], f[0]))]
            if objs:
                groups.append({etype: objs, "startPosition": 1, "maxResults": len(objs)})
            else:
                groups.append({})
        if not groups:
            groups = [{}]
        payload = dumps({"CDCResponse": [{"QueryResponse": groups}], "time": fmt_time(now)})
    return 200, payload, False, []
