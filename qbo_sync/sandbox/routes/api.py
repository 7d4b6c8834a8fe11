"""``/v3/company/{realmId}/...``: the gate every API call passes (token, throttles, faults, latency), then the
family that answers it (``records``, ``query``, ``batch``, ``cdc``), then the bookkeeping (stats, webhooks)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import faults
from ..limits import throttle_body
from ..store import Realm
from ..util import QBOError, auth_fault, fmt_time, loads
from . import batch, cdc, query, records
from .base import Abort, Answer, ApiCall, fault_answer

if TYPE_CHECKING:
    from ..handler import Handler

MIN_MINOR_VERSION = 75
# the families answering a call of each kind; any other kind is a record's (read, create, update, delete, void)
FAMILIES: dict[str, Callable[[Handler, Realm, ApiCall], Answer]] = {
    "query": query.handle, "cdc": cdc.handle, "batch": batch.handle, "companyinfo": records.company_info,
    "preferences": records.preferences,
}


def kind_of(method: str, rest: list[str], params: dict) -> str:
    head = rest[0].lower() if rest else ""
    if head in FAMILIES:
        return head
    if method == "GET":
        return "read"
    op = (params.get("operation") or "").lower()
    if op == "delete":
        return "delete"
    if op == "void" or (op == "update" and params.get("include") == "void"):
        return "void"
    if op == "update":
        return "update"
    return "create"  # or update, decided by the body's Id once parsed (records.write)


def handle(h: Handler, method: str, realm_id: str, call: ApiCall) -> None:
    sb = h.sandbox
    now = sb.clock.time()
    token = h.bearer_token()
    problem = sb.oauth.check_access(token, realm_id)
    realm = sb.realms.get(realm_id)
    if problem or realm is None:
        sb.global_stats["unauthorized"] += 1
        if realm is not None:
            realm.stats["auth_failures"] += 1
        if problem == "forbidden" or (problem is None and realm is None):
            h.reply_json(403, auth_fault(403, token, False, now))
        else:
            h.reply_json(401, auth_fault(401, token, problem == "expired", now),
                         headers={"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})
        return
    limiter = sb.limiters[realm_id]
    span = 60.0 / sb.options["time_scale"]
    hit = limiter.acquire(now, span, sb.opt(realm, "rate_limit"), sb.opt(realm, "concurrency"),
                          call.kind == "batch", sb.opt(realm, "batch_rate"))
    if hit:
        realm.stats["throttled"][hit] += 1
        h.reply(429, throttle_body(fmt_time(now)), content_type="application/xml")
        return
    tally = Tally(realm, call)
    released = False
    try:
        mv = call.params.get("minorversion")
        if mv is not None and mv.isdigit() and int(mv) < MIN_MINOR_VERSION:
            realm.stats["requests"]["old_minorversion"] += 1
        scripted = scripted_fault(realm, call, sb.scripts) if sb.scripts else None
        if scripted is not None:
            if not scripted.after:
                serve_fault(h, tally, scripted, scripted=True)
        else:
            for fault in faults.draw(faults.BEFORE, lambda option: sb.opt(realm, option)):
                serve_fault(h, tally, fault)
        lat = sb.opt(realm, "latency_ms")
        if lat:
            time.sleep(random.uniform(*lat) / 1000.0 / sb.options["time_scale"])
        try:
            status, payload, committed, events = FAMILIES.get(call.kind, records.record)(h, realm, call)
        except QBOError as err:
            status, payload, committed, events = fault_answer(h, err)
        if events:
            sb.webhooks.emit(realm_id, events)
        if committed:
            sb.mark_dirty()
        if scripted is not None:
            if scripted.after:
                serve_fault(h, tally, scripted, scripted=True)
        elif committed:
            for fault in faults.draw(faults.AFTER, lambda option: sb.opt(realm, option)):
                serve_fault(h, tally, fault)
        # bookkeeping before the response leaves: the client may act on it at once
        tally.count()
        released = True
        limiter.release()
        h.reply(status, payload, headers={"Qbo-Version": "sandbox",
                                          "Service-Time": f"total={int((sb.clock.time() - now) * 1000)}"})
    finally:
        tally.count()
        if not released:
            limiter.release()


class Tally:
    """Counts a served call once in ``requests`` by its kind (final once the body was read: create or update)."""

    def __init__(self, realm: Realm, call: ApiCall):
        self.realm, self.call, self.pending = realm, call, True

    def count(self) -> None:
        if self.pending:
            self.pending = False
            self.realm.stats["requests"][self.call.kind] += 1

    def skip(self) -> None:
        self.pending = False


def serve_fault(h: Handler, tally: Tally, fault: faults.Fault, scripted: bool = False) -> None:
    """Count and serve one fault; a final one ends the request (no normal answer follows)."""
    realm = tally.realm
    faults.record(realm.stats, fault)
    if scripted:
        realm.stats["scripted"][fault.name] += 1
    if fault.gate:
        tally.skip()  # refused at the gate, as a real 401/429: not a served request
    else:
        tally.count()
    fault.serve(h, realm)
    if fault.final:
        raise Abort()


def scripted_fault(realm: Realm, call: ApiCall, scripts: faults.Scripts) -> faults.Fault | None:
    """The scripted fault this call takes, if one matches it."""
    kind = call.kind
    if kind == "create" and call.body:
        try:
            data = loads(call.body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("Id") not in (None, ""):
            kind = "update"

    def named() -> frozenset[str]:
        if kind == "batch":
            return frozenset(query.from_entity(str(i["Query"])) if "Query" in i else
                             next((k for k in i if k not in batch.ITEM_KEYS), "")
                             for i in batch.items_of(call.body) if isinstance(i, dict))
        if kind == "query":
            return frozenset([query.from_entity(query.text_of(call))])
        if kind == "cdc":
            return frozenset(n.strip() for n in call.params.get("entities", "").split(","))
        rest = call.rest
        return frozenset([records.PATH_ENTITIES.get(rest[0].lower(), rest[0])] if rest else [])

    return scripts.take(faults.Request(realm.id, call.method, "/" + "/".join(call.rest), kind, named))
