"""Entity routes: read, create, update, delete and void one record; CompanyInfo and Preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import entities
from ..store import ENTITY_TYPES, Realm
from ..util import QBOError, dumps, fmt_time, loads
from .base import Answer, ApiCall, json_answer, unsupported_path

if TYPE_CHECKING:
    from ..handler import Handler

PATH_ENTITIES = {t.lower(): t for t in ENTITY_TYPES}
WRITES = {"create": entities.create, "update": entities.update, "delete": entities.delete, "void": entities.void}


def preferences(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    if call.method != "GET" or len(call.rest) != 1:
        raise unsupported_path(h, call.path)
    with realm.lock:
        return json_answer(h, {"Preferences": realm.entities["Preferences"]["1"]})


def company_info(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    if call.method != "GET" or len(call.rest) != 2 or call.rest[1] not in (realm.id, "1"):
        raise unsupported_path(h, call.path)
    with realm.lock:
        return json_answer(h, {"CompanyInfo": realm.entities["CompanyInfo"]["1"]})


def record(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    """``GET {entity}/{id}``, or a write ``POST {entity}[?operation=...]``."""
    rest = call.rest
    etype = PATH_ENTITIES.get(rest[0].lower()) if rest else None
    if etype is None or etype == "CompanyInfo":
        raise unsupported_path(h, call.path)
    if call.kind == "read":
        if len(rest) != 2:
            raise unsupported_path(h, call.path)
        with realm.lock:
            return json_answer(h, {etype: entities.read(realm, etype, rest[1])})
    if call.method != "POST" or len(rest) != 1:
        raise unsupported_path(h, call.path)
    return write(h, realm, call, etype)


def write(h: Handler, realm: Realm, call: ApiCall, etype: str) -> Answer:
    """A write, replayed byte for byte when its ``requestid`` was answered before."""
    sb = h.sandbox
    requestid = call.params.get("requestid")
    if requestid:
        if len(requestid) > 50:
            raise QBOError("2010", "Request has invalid or unsupported property",
                           "requestid is longer than 50 characters")
        with realm.lock:
            cached = realm.requestids.get(requestid)
        if cached is not None:
            realm.stats["deduplicated"] += 1
            return cached[0], cached[1], False, []
    try:
        data = loads(call.body) if call.body else None
    except ValueError:
        raise QBOError("2010", "Request has invalid or unsupported property",
                       "Unable to parse the request body as JSON") from None
    if call.kind == "create" and isinstance(data, dict) and data.get("Id") not in (None, ""):
        call.kind = "update"
    with realm.lock:
        if requestid and requestid in realm.requestids:  # a concurrent duplicate won the race
            realm.stats["deduplicated"] += 1
            cached = realm.requestids[requestid]
            return cached[0], cached[1], False, []
        now = sb.clock.time()
        include = frozenset(v.strip().lower() for v in call.params.get("include", "").split(",") if v.strip())
        rtype, obj, events = WRITES[call.kind](realm, etype, data, now, include)
        payload = dumps({rtype: obj, "time": fmt_time(now)})
        if requestid:
            realm.remember(requestid, (200, payload))
    return 200, payload, True, events
