"""The sandbox's faults, each defined once.

A :class:`Fault` says what happens, what QBO answers (status, error code, body), the rate option that serves it
at random (``fault_rate`` ...) and the counter that counts it. The server's defaults and per-realm options, the
``python -m qbo_sync.sandbox`` flags, the stats and the fault table of ``docs/sandbox.md`` are derived from
:data:`FAULTS`; adding a fault here is the whole change.

Rate faults are drawn in the order of :data:`FAULTS` from the global ``random`` (a seeded test replays them).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .limits import throttle_body
from .util import auth_fault, fmt_time, stale, system_fault

SLOW_SECONDS = (5.0, 15.0)  # a "slow" response takes this long (divided by time_scale)

# ``serve(handler, realm)`` answers (or drops, or delays) one request. The handler offers ``reply(status, body,
# content_type=..., headers=...)``, ``reply_json(status, obj, headers=...)``, ``drop()`` (TCP RST, no answer)
# and ``sandbox`` (its clock and options).
Serve = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Fault:
    name: str
    does: str  # completes "share of API calls ..." (or of writes), for flags and docs
    answer: str  # what QBO answers, for the docs table
    stat: str  # the realm counter it adds to (``GET /_sandbox/stats``)
    serve: Serve
    stat_key: str | None = None  # the counter is a dict (by status, by limit): this fault's key in it
    option: str | None = None  # the rate option serving it at random; faults sharing one are picked evenly
    after: bool = False  # served once the request was handled (the write committed), not instead of it
    final: bool = True  # the request ends here (False: delayed, then answered as usual)
    gate: bool = False  # answered as QBO's gate answers (401, 429): not counted as a served request


def _json_fault(status: int, err: Any) -> Serve:
    def serve(h: Any, realm: Any) -> None:
        h.reply_json(status, {"Fault": err().fault(), "time": fmt_time(h.sandbox.clock.time())})

    return serve


def _unavailable() -> Any:
    err = system_fault()
    err.detail = "System Failure Error: Service Unavailable. Please try again later."
    err.status = 503
    return err


def _drop(h: Any, realm: Any) -> None:
    h.drop()


def _garbage(h: Any, realm: Any) -> None:
    # what a proxy or a broken node answers: a truncated JSON 200 or an HTML 502 page
    if random.random() < 0.5:
        h.reply(200, b'{"QueryResponse":{"Customer":[{"Id":"1","Displ')
    else:
        h.reply(502, b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
                     b"</body></html>", content_type="text/html")


def _slow(h: Any, realm: Any) -> None:
    time.sleep(random.uniform(*SLOW_SECONDS) / h.sandbox.options["time_scale"])


def _throttle(h: Any, realm: Any) -> None:
    h.reply(429, throttle_body(fmt_time(h.sandbox.clock.time())), content_type="application/xml")


def _expired(h: Any, realm: Any) -> None:
    # the realm's access tokens really expire: the client must refresh, as after a real expiry
    h.sandbox.expire_access_tokens(realm.id)
    h.reply_json(401, auth_fault(401, h.bearer_token(), True, h.sandbox.clock.time()),
                 headers={"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})


FAULTS: tuple[Fault, ...] = (
    Fault("reset", "whose connection is reset", "no answer: the TCP connection is reset (RST)", "resets", _drop,
          option="reset_rate"),
    Fault("server_error", "answered 500 SystemFault", '500 `{"Fault":{"Error":[{"code":"10000",…}],'
          '"type":"SystemFault"}}` (System Failure Error)', "faults_injected", _json_fault(500, system_fault),
          stat_key="500", option="fault_rate"),
    Fault("service_unavailable", "answered 503 SystemFault", "503, the same SystemFault body (code 10000) saying "
          "Service Unavailable", "faults_injected", _json_fault(503, _unavailable), stat_key="503",
          option="fault_rate"),
    Fault("garbage", "answered with a truncated JSON 200 or an HTML 502 page (nothing written)",
          "what a proxy or a broken node answers: `200` with a cut-off JSON body, or `502` with an HTML page",
          "garbage", _garbage, option="garbage_rate"),
    Fault("slow", "delayed 5-15 s (scaled), then answered as usual",
          "the usual answer, 5-15 s late (divided by `time_scale`)", "slow", _slow, option="slow_rate",
          final=False),
    Fault("lost_response", "whose response is lost after the write committed (connection reset)",
          "no answer, but the write is done: a retry with the same `requestid` gets the original answer",
          "lost_responses", _drop, option="lost_response_rate", after=True),
    Fault("throttle", "answered 429 ThrottleExceeded", "429 with the XML `ThrottleExceeded` body (code 3001), as "
          "a throttled call", "throttled", _throttle, stat_key="injected", gate=True),
    Fault("expired_token", "answered 401: the access token expired (all of the realm's do)",
          "401 with the lower-case `fault` body (code 3200, `Token expired`) and `WWW-Authenticate`; the realm's "
          "access tokens are expired, so the client must refresh",
          "auth_failures", _expired, gate=True),
    Fault("stale_object", "answered 400 Stale Object Error (nothing written)",
          '400 `{"Fault":{"Error":[{"code":"5010","Message":"Stale Object Error",…}],"type":"ValidationFault"}}`',
          "stale_objects", _json_fault(400, stale)),
)
BY_NAME: dict[str, Fault] = {f.name: f for f in FAULTS}

# rate option -> the faults it serves, in the order they are drawn
RATE_OPTIONS: dict[str, tuple[Fault, ...]] = {}
for _f in FAULTS:
    if _f.option:
        RATE_OPTIONS[_f.option] = (*RATE_OPTIONS.get(_f.option, ()), _f)
BEFORE = tuple((name, fs) for name, fs in RATE_OPTIONS.items() if not fs[0].after)
AFTER = tuple((name, fs) for name, fs in RATE_OPTIONS.items() if fs[0].after)


def option_help(option: str) -> str:
    faults = RATE_OPTIONS[option]
    scope = "writes" if faults[0].after else "API calls"
    return f"share of {scope} {' or '.join(f.does for f in faults)} (fault {', '.join(f.name for f in faults)})"


def check_rate(option: str, value: Any) -> float:
    rate = float(value or 0.0)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{option} must be between 0 and 1, not {value!r}")
    return rate


def draw(options: tuple[tuple[str, tuple[Fault, ...]], ...], rate_of: Callable[[str], Any]) -> list[Fault]:
    """The rate faults that hit one request: each option in turn draws, and picks among its faults."""
    hit: list[Fault] = []
    for option, faults in options:
        rate = rate_of(option)
        if rate and random.random() < rate:
            hit.append(random.choice(faults) if len(faults) > 1 else faults[0])
            if hit[-1].final:
                break
    return hit


def new_counters() -> dict[str, Any]:
    """The fault counters of a realm's stats: an int each, or a dict by key."""
    out: dict[str, Any] = {}
    for f in FAULTS:
        out.setdefault(f.stat, defaultdict(int) if f.stat_key else 0)
    return out


def record(stats: dict[str, Any], fault: Fault) -> None:
    if fault.stat_key:
        stats[fault.stat][fault.stat_key] += 1
    else:
        stats[fault.stat] += 1


# ---------------------------------------------------------------------------------------------- scripted faults

# what a request does, as a script names it; "write" is any of the write operations, a batch included
OPERATIONS = ("read", "create", "update", "delete", "void", "query", "cdc", "batch", "companyinfo", "preferences")
ALIASES = {"write": ("create", "update", "delete", "void", "batch")}


@dataclass
class Request:
    """One API request, as scripts match it. ``entities`` is computed only when a script asks (a batch's items,
    a query's FROM, cdc's ``entities``, the path's entity otherwise)."""

    realm: str
    method: str
    path: str  # after /v3/company/{realm}, e.g. "/customer/5"
    operation: str
    entities: Callable[[], frozenset[str]]


@dataclass
class Script:
    """"The next ``times`` requests matching (realm, method, path, entity, operation) are served ``fault``"."""

    id: int
    fault: Fault
    times: int
    realm: str | None = None
    method: str | None = None
    path: str | None = None  # a glob on the path after /v3/company/{realm}, case-insensitive: "/customer/*"
    entity: str | None = None
    operations: tuple[str, ...] = ()
    served: int = 0
    _entity_key: str = field(default="", repr=False)

    def matches(self, req: Request) -> bool:
        if self.realm is not None and self.realm != req.realm:
            return False
        if self.method is not None and self.method != req.method:
            return False
        if self.operations and req.operation not in self.operations:
            return False
        if self.path is not None and not fnmatchcase(req.path.lower(), self.path.lower()):
            return False
        return not self.entity or self._entity_key in {e.lower() for e in req.entities()}

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "fault": self.fault.name, "times": self.times, "served": self.served,
                "remaining": self.times - self.served, "realm_id": self.realm, "method": self.method,
                "path": self.path, "entity": self.entity, "operation": list(self.operations) or None}


def _operations(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    names = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for name in names:
        key = str(name).strip().lower()
        if key in ALIASES:
            out += ALIASES[key]
        elif key in OPERATIONS:
            out.append(key)
        else:
            raise ValueError(f"unknown operation {name!r}: one of {', '.join((*OPERATIONS, *ALIASES))}")
    return tuple(dict.fromkeys(out))


class Scripts:
    """Scripted faults, consumed in the order they were added: a request takes the first script it matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: list[Script] = []
        self._ids = itertools.count(1)

    def __bool__(self) -> bool:
        return bool(self._scripts)

    def add(self, fault: str, times: int = 1, *, realm: str | None = None, method: str | None = None,
            path: str | None = None, entity: str | None = None,
            operation: str | Iterable[str] | None = None) -> Script:
        if fault not in BY_NAME:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(BY_NAME)}")
        times = int(times)
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        script = Script(next(self._ids), BY_NAME[fault], times, realm=str(realm) if realm else None,
                        method=method.upper() if method else None, path=path or None, entity=entity or None,
                        operations=_operations(operation))
        script._entity_key = (entity or "").lower()
        with self._lock:
            self._scripts.append(script)
        return script

    def take(self, req: Request) -> Fault | None:
        """The fault of the first script ``req`` matches (one of its ``times`` used up), or None."""
        with self._lock:
            for script in self._scripts:
                if script.matches(req):
                    script.served += 1
                    if script.served >= script.times:
                        self._scripts.remove(script)
                    return script.fault
        return None

    def pending(self, realm: str | None = None) -> list[dict[str, Any]]:
        """Scripts still waiting: all, or those that can match ``realm`` (its own and the realm-less ones)."""
        with self._lock:
            return [s.as_dict() for s in self._scripts if realm is None or s.realm in (None, realm)]

    def clear(self, realm: str | None = None) -> int:
        """Drop every script, or only ``realm``'s own."""
        with self._lock:
            keep = [s for s in self._scripts if realm is not None and s.realm != realm]
            dropped, self._scripts = len(self._scripts) - len(keep), keep
        return dropped


def markdown_table() -> str:
    """The fault table of ``docs/sandbox.md`` (a test keeps the page equal to it)."""
    rows = ["| fault | rate option | QBO's answer | counted in stats as |", "|---|---|---|---|"]
    for f in FAULTS:
        stat = f"`{f.stat}[\"{f.stat_key}\"]`" if f.stat_key else f"`{f.stat}`"
        when = " (after the write)" if f.after else ""
        rows.append(f"| `{f.name}` | {f'`{f.option}`' if f.option else 'scripted only'}{when} | {f.answer} | "
                    f"{stat} |")
    return "\n".join(rows)
