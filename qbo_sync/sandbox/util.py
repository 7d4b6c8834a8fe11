"""Shared helpers: the sandbox clock, QBO timestamp formats, fault bodies, JSON (Decimal) codec."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

try:  # the company's offset: US Pacific, like Intuit's sandbox companies
    from zoneinfo import ZoneInfo

    COMPANY_TZ: Any = ZoneInfo("America/Los_Angeles")
except Exception:  # pragma: no cover - no tz database: fixed PST
    COMPANY_TZ = timezone(timedelta(hours=-8), "PST")

CENT = Decimal("0.01")


class Clock:
    """The sandbox's notion of "now": wall-clock time plus an adjustable offset.

    Tests call :meth:`advance` to move time forward (token expiry, rate windows, webhook retries,
    CDC look-back) without sleeping. Listeners (the webhook dispatcher) are woken on every advance.
    """

    def __init__(self, offset: float = 0.0):
        self.offset = offset
        self._listeners: list[Any] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += seconds
            listeners = list(self._listeners)
        for cb in listeners:
            cb()

    def on_advance(self, cb: Any) -> None:
        with self._lock:
            self._listeners.append(cb)


def company_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, COMPANY_TZ)


def fmt_meta(ts: float) -> str:
    """MetaData timestamp: seconds, company offset (``2020-09-29T05:58:16-07:00``)."""
    return company_dt(int(ts)).isoformat(timespec="seconds")


def fmt_time(ts: float) -> str:
    """Top-level ``time``: milliseconds, company offset (``2020-09-29T05:58:16.187-07:00``)."""
    return company_dt(ts).isoformat(timespec="milliseconds")


def fmt_utc(ts: float) -> str:
    """Webhook ``lastUpdated``: UTC with milliseconds and ``Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def company_date(ts: float) -> str:
    return company_dt(ts).date().isoformat()


def parse_datetime(text: str) -> float:
    """Parse a QBO datetime/date literal into epoch seconds; naive values are company-local.

    Raises ValueError when it is not a date.
    """
    s = text.strip()
    if len(s) == 10:
        d = date.fromisoformat(s)
        return datetime(d.year, d.month, d.day, tzinfo=COMPANY_TZ).timestamp()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # -0700 (no colon) as seen in old webhook samples
    if len(s) > 5 and s[-5] in "+-" and s[-4:].isdigit() and ":" not in s[-5:]:
        s = s[:-2] + ":" + s[-2:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=COMPANY_TZ)
    return dt.timestamp()


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("boolean is not a number")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


# --------------------------------------------------------------------------- faults


class QBOError(Exception):
    """A QBO Fault. ``element`` is included only when not None (recorded bodies vary)."""

    def __init__(self, code: str, message: str, detail: str, element: str | None = None,
                 status: int = 400, ftype: str = "ValidationFault"):
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail = code, message, detail
        self.element, self.status, self.ftype = element, status, ftype

    def fault(self) -> dict:
        err: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element is not None:
            err["element"] = self.element
        return {"Error": [err], "type": self.ftype}


def not_found() -> QBOError:
    return QBOError(
        "610", "Object Not Found",
        "Object Not Found : Something you're trying to use has been made inactive. "
        "Check the fields with accounts, customers, items, vendors or employees.", element="")


def stale(user: str = "Sandbox Accountant") -> QBOError:
    return QBOError(
        "5010", "Stale Object Error",
        f"Stale Object Error : You and {user} were working on this at the same time. "
        f"{user} finished before you did, so your work was not saved.", element="")


def duplicate_name(detail: str = "The name supplied already exists. : null") -> QBOError:
    return QBOError("6240", "Duplicate Name Exists Error", detail)


def required(param: str) -> QBOError:
    return QBOError("2020", "Required param missing, need to supply the required value for the API",
                    f"Required parameter {param} is missing in the request", element=param)


def invalid_id(value: Any) -> QBOError:
    return QBOError("2030", "Invalid ID", f"Id should be a valid number. Supplied value:{value}", element="Id")


def unsupported(detail: str) -> QBOError:
    return QBOError("500", "Unsupported Operation", detail)


def business(detail: str) -> QBOError:
    return QBOError("6000", "A business validation error has occurred while processing your request",
                    f"Business Validation Error: {detail}", element="")


def unknown_property(name: str, entity: str) -> QBOError:
    return QBOError(
        "2010", "Request has invalid or unsupported property",
        f'Property Name:Unrecognized field "{name}" (class com.intuit.schema.finance.v3.{entity}), '
        "not marked as ignorable specified is unsupported or invalid")


def system_fault() -> QBOError:
    return QBOError("10000", "An application error has occurred while processing your request",
                    "System Failure Error: An unexpected error occurred while accessing or saving your data. "
                    "Please wait a few minutes and try again. If the problem persists, contact customer support.",
                    status=500, ftype="SystemFault")


def auth_fault(status: int, token: str | None, expired: bool, now: float) -> dict:
    """The lower-case 401/403 body QBO's gate answers (recorded; ``time`` in epoch milliseconds)."""
    if status == 401:
        code, msg, ftype = "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", "AUTHENTICATION"
        detail = f"Token expired: {(token or '')[:50]}" if expired else "Token invalid"
    else:
        code, msg, ftype = "3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", \
            "AUTHORIZATION"
        detail = "The token is not valid for this company (realmId)"
    return {"warnings": None, "intuitObject": None,
            "fault": {"error": [{"message": msg, "detail": detail, "code": code, "element": None}], "type": ftype},
            "report": None, "queryResponse": None, "batchItemResponse": [], "attachableResponse": [],
            "syncErrorResponse": None, "requestId": None, "time": int(now * 1000), "status": None,
            "cdcresponse": []}


# --------------------------------------------------------------------------- JSON


def loads(raw: bytes | str) -> Any:
    """Parse a request body; non-integral numbers become Decimal."""
    return json.loads(raw, parse_float=Decimal)


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items() if k[:1] != "_"}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, Decimal):
        if not value:
            return 0
        if value == value.to_integral_value() and value.as_tuple().exponent >= 0:
            return int(value)
        return float(value)
    return value


def wire(value: Any) -> Any:
    """Deep copy for the wire: Decimals -> JSON numbers, keys starting with ``_`` dropped."""
    return _wire(value)


def dumps(value: Any) -> bytes:
    return json.dumps(_wire(value), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# state-file codec: Decimals survive a round trip


def _state_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return {"$dec": str(o)}
    raise TypeError(type(o).__name__)


def _state_hook(d: dict) -> Any:
    if len(d) == 1 and "$dec" in d:
        return Decimal(d["$dec"])
    return d


def state_dumps(value: Any) -> str:
    return json.dumps(value, default=_state_default)


def state_loads(text: str) -> Any:
    return json.loads(text, object_hook=_state_hook)
