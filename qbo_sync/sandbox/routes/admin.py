"""``/_sandbox/...``: the test and observability endpoints (stats, realms, tokens, options, faults, clock)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import faults
from ..util import QBOError

if TYPE_CHECKING:
    from ..handler import Handler
    from ..server import Sandbox

PREFIX = "/_sandbox/"

# each route: (sandbox, JSON body, query parameters) -> (status, JSON answer)
Route = Callable[["Sandbox", dict, dict], tuple[int, Any]]


def _realm_id(data: dict, params: dict | None = None) -> str:
    return data.get("realm_id") or data.get("realmId") or (params or {}).get("realm", "")


def stats(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    realm_id = params.get("realm")
    if realm_id and realm_id not in sb.realms:
        return 404, {"error": "unknown realm"}
    return 200, sb.stats(realm_id)


def health(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, {"ok": True, "realms": len(sb.realms)}


def create_realm(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    rid = sb.create_realm(_realm_id(data) or None, starter_data=data.get("starter_data"))
    out: dict[str, Any] = {"realmId": rid}
    if data.get("tokens"):
        out["tokens"] = sb.issue_tokens(rid)
    return 200, out


def tokens(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, sb.issue_tokens(_realm_id(data) or sb.default_realm or sb.create_realm())


def configure(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    realm_id = data.pop("realm_id", None) or data.pop("realmId", None)
    sb.configure(realm_id, **data)
    return 200, {"ok": True}


def set_tax_rates(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, {"codes": sb.set_tax_rates(_realm_id(data), data.get("rates"))}


def tax_rates(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, sb.tax_rates(params.get("realm", ""))


def reset(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    sb.reset(_realm_id(data, params))
    return 200, {"ok": True}


def expire_tokens(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, {"expired": sb.expire_access_tokens(_realm_id(data))}


def merge(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    realm_id = _realm_id(data)
    if realm_id not in sb.realms:
        return 404, {"error": "unknown realm"}
    try:
        return 200, {"Customer": sb.merge_customers(realm_id, data["from_id"], data["into_id"])}
    except QBOError as err:
        return 400, {"error": err.fault()["Error"][0]["Detail"]}


def script_fault(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    realm_id = data.pop("realm_id", None) or data.pop("realmId", None)
    fault = data.pop("fault")
    return 200, {"script": sb.fail_next(fault, data.pop("times", 1), realm_id=realm_id, **data)}


def list_faults(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    registry = [{"name": f.name, "option": f.option, "does": f.does, "answer": f.answer, "stat": f.stat,
                 "stat_key": f.stat_key} for f in faults.FAULTS]
    return 200, {"faults": registry, "scripted_pending": sb.scripted_faults(params.get("realm"))}


def clear_faults(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    return 200, {"cleared": sb.clear_scripted_faults(_realm_id(data, params) or None)}


def advance(sb: Sandbox, data: dict, params: dict) -> tuple[int, Any]:
    sb.advance(float(data.get("seconds", 0)))
    return 200, {"offset": sb.clock.offset}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "stats"): stats,
    ("GET", "health"): health,
    ("POST", "health"): health,
    ("POST", "realms"): create_realm,
    ("POST", "tokens"): tokens,
    ("POST", "configure"): configure,
    ("POST", "tax-rates"): set_tax_rates,
    ("GET", "tax-rates"): tax_rates,
    ("POST", "reset"): reset,
    ("POST", "expire-tokens"): expire_tokens,
    ("POST", "merge"): merge,
    ("POST", "faults"): script_fault,
    ("GET", "faults"): list_faults,
    ("DELETE", "faults"): clear_faults,
    ("POST", "advance"): advance,
}


def handle(h: Handler, method: str, path: str, params: dict, body: bytes) -> None:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        h.reply_json(400, {"error": "invalid JSON"})
        return
    route = ROUTES.get((method, path[len(PREFIX):]))
    if route is None or not isinstance(data, dict):
        h.reply_json(404 if route is None else 400, {"error": "not_found" if route is None else "not an object"})
        return
    try:
        status, answer = route(h.sandbox, data, params)
    except (KeyError, TypeError, ValueError) as exc:
        status, answer = 400, {"error": str(exc)}
    h.reply_json(status, answer)

