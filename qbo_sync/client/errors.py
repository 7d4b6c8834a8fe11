"""Turn QuickBooks Online error answers into typed exceptions.

QBO answers errors in several shapes, and a client that assumes JSON crashes on the first throttle:

* the normal JSON fault ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type": ...}}``;
* the 401 body in lower camel case ``{"fault": {"error": [{"message", "detail", "code"}], "type":
  "AUTHENTICATION"}}``;
* the XML ``<IntuitResponse><Fault type="SERVICE"><Error code="3001">`` throttle body, sent even when JSON was
  asked for;
* HTML error pages from proxies and load balancers, empty bodies, truncated JSON.

:func:`error_from_response` never raises; whatever the body, it returns a
:class:`~qbo_sync.exceptions.QboApiError` subclass that knows whether a retry may help.
:func:`error_from_fault` does the same for a ``Fault`` dict already parsed (batch items carry one each, with
HTTP 200).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from qbo_sync.exceptions import (
    QboApiError,
    QboAuthError,
    QboDuplicateName,
    QboNotFound,
    QboProtocolError,
    QboRateLimited,
    QboServerError,
    QboStaleObject,
    QboValidationError,
)

__all__ = [
    "DEFAULT_THROTTLE_WAIT",
    "error_from_fault",
    "error_from_response",
    "parse_fault_body",
    "redact",
]

#: Seconds QBO asks clients to wait after a 429 (it sends no Retry-After header).
DEFAULT_THROTTLE_WAIT = 60.0

_SNIPPET = 200
# Long opaque strings (bearer tokens, JWT pieces) that a 401 Detail may quote back ("Token expired:
# AB0160...").
_TOKENISH = re.compile(r"[A-Za-z0-9_\-\.=+/]{20,}")


def redact(text: str | None) -> str | None:
    """Replace token-like runs in ``text``; QBO's 401 detail echoes part of the access token."""
    if not text:
        return text
    return _TOKENISH.sub("[redacted]", text)


def _snippet(body: str) -> str:
    body = " ".join(body.split())
    return body if len(body) <= _SNIPPET else body[:_SNIPPET] + "..."


def _norm_error(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One Error entry, whatever its casing, as {"code", "message", "detail", "element"} (code as string)."""

    def pick(*names: str) -> Any:
        for name in names:
            if name in raw and raw[name] is not None:
                return raw[name]
        return None

    code = pick("code", "Code")
    return {
        "code": str(code) if code is not None else None,
        "message": pick("Message", "message"),
        "detail": pick("Detail", "detail"),
        "element": pick("element", "Element") or None,
    }


def parse_fault_body(body: bytes | str) -> tuple[str | None, list[dict[str, Any]]] | None:
    """Find a fault in a JSON or XML body: ``(fault_type, errors)``, or None if none can be read."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _parse_xml_fault(stripped)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, Mapping):
        return None
    fault = data.get("Fault") or data.get("fault")
    if not isinstance(fault, Mapping):
        return None
    return _fault_parts(fault)


def _fault_parts(fault: Mapping[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    raw_errors = fault.get("Error") or fault.get("error") or []
    if isinstance(raw_errors, Mapping):
        raw_errors = [raw_errors]
    errors = [_norm_error(e) for e in raw_errors if isinstance(e, Mapping)] if isinstance(raw_errors, list) else []
    fault_type = fault.get("type") or fault.get("Type")
    return (str(fault_type) if fault_type is not None else None), errors


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml_fault(text: str) -> tuple[str | None, list[dict[str, Any]]] | None:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None  # HTML pages and anything with a DTD are not QBO faults; never expand entities.
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTD/entity bodies refused above
    except ET.ParseError:
        return None
    fault = root if _local(root.tag) == "Fault" else next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
    if fault is None:
        return None
    errors = []
    for err in fault.iter():
        if _local(err.tag) != "Error":
            continue
        entry: dict[str, Any] = {"code": err.get("code"), "element": err.get("element") or None}
        for child in err:
            name = _local(child.tag).lower()
            if name in ("message", "detail"):
                entry[name] = (child.text or "").strip()
        errors.append(_norm_error(entry))
    return fault.get("type"), errors


def _class_for(code: str | None, status: int | None, fault_type: str | None) -> type[QboApiError]:
    """Map QBO's fault code (first) and the HTTP status to an exception class."""
    if code == "3001" or status == 429:
        return QboRateLimited
    if code in ("3200", "3100", "120") or status == 401 or (fault_type or "").upper().startswith("AUTH"):
        return QboAuthError
    if code == "5010":
        return QboStaleObject
    if code == "6240":
        return QboDuplicateName
    if code == "610" or status == 404:
        return QboNotFound
    if status is not None and status >= 500:
        return QboServerError
    if (fault_type or "").lower() == "systemfault" and status in (None, 200):
        return QboServerError  # a batch item failing on QBO's side
    if code is not None or (fault_type or "").lower() == "validationfault" or status == 400:
        # Includes fault code "500" "Unsupported Operation", which QBO sends with HTTP 400.
        return QboValidationError
    return QboApiError


def _build(
    errors: list[dict[str, Any]],
    *,
    status: int | None,
    fault_type: str | None,
    intuit_tid: str | None,
    retry_after: float | None = None,
) -> QboApiError:
    first = errors[0] if errors else {}
    code = first.get("code")
    cls = _class_for(code, status, fault_type)
    message, detail = first.get("message"), first.get("detail")
    if issubclass(cls, QboAuthError):
        message, detail = redact(message), redact(detail)
        errors = [{**e, "message": redact(e.get("message")), "detail": redact(e.get("detail"))} for e in errors]
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "detail": detail,
        "element": first.get("element"),
        "intuit_tid": intuit_tid,
        "fault_type": fault_type,
        "errors": errors,
    }
    if cls is QboRateLimited:
        return QboRateLimited(message, wait_seconds=retry_after, **kwargs)
    if cls is QboApiError and status is not None and 500 <= status:
        kwargs["retryable"] = True
    return cls(message, **kwargs)


def error_from_fault(
    fault: Mapping[str, Any], *, status: int | None = 200, intuit_tid: str | None = None
) -> QboApiError:
    """Typed error for a ``Fault`` dict already parsed, e.g. one batch item's."""
    fault_type, errors = _fault_parts(fault)
    return _build(errors, status=status, fault_type=fault_type, intuit_tid=intuit_tid)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: QBO does not send it; ignore rather than guess.
    return seconds if seconds >= 0 else None


def error_from_response(
    status: int,
    body: bytes | str | None,
    *,
    headers: Mapping[str, str] | None = None,
    intuit_tid: str | None = None,
) -> QboApiError:
    """Typed error for a failed (or unreadable) HTTP answer. Never raises."""
    body = body or b""
    retry_after = _retry_after(headers)
    try:
        parsed = parse_fault_body(body)
    except Exception:
        parsed = None
    if parsed is not None and (parsed[1] or status >= 400):
        fault_type, errors = parsed
        return _build(errors, status=status, fault_type=fault_type, intuit_tid=intuit_tid, retry_after=retry_after)

    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    snippet = _snippet(text) if text.strip() else "(empty body)"
    if status == 429:
        return QboRateLimited(None, status=status, detail=snippet, intuit_tid=intuit_tid, wait_seconds=retry_after)
    if status == 401:
        return QboAuthError(None, status=status, detail=redact(snippet), intuit_tid=intuit_tid)
    if status == 404:
        return QboNotFound(None, status=status, detail=snippet, intuit_tid=intuit_tid)
    if status >= 500:
        return QboServerError(None, status=status, detail=snippet, intuit_tid=intuit_tid)
    return QboProtocolError(
        f"Unreadable response from QuickBooks Online (HTTP {status})",
        status=status,
        detail=snippet,
        intuit_tid=intuit_tid,
        retryable=status < 400,
    )
