"""``/query``: the query language (GET ``?query=`` or POST ``application/text``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import query
from ..store import Realm
from ..util import required
from .base import Answer, ApiCall, json_answer

if TYPE_CHECKING:
    from ..handler import Handler

_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)


def text_of(call: ApiCall) -> str:
    return (call.params.get("query") if call.method == "GET" else call.body.decode("utf-8", "replace")) or ""


def from_entity(text: str) -> str:
    """The entity a query reads (its FROM), or "" when there is none."""
    m = _FROM.search(text)
    return query.ENTITY_NAMES.get(m.group(1).lower(), m.group(1)) if m else ""


def handle(h: Handler, realm: Realm, call: ApiCall) -> Answer:
    text = text_of(call)
    if not text:
        raise required("query")
    with realm.lock:
        return json_answer(h, {"QueryResponse": query.execute(realm, text)})
