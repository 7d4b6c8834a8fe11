"""What the route families share: one API call, its answer, and the faults every family can raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..util import QBOError, dumps, fmt_time, unsupported

if TYPE_CHECKING:
    from ..handler import Handler

# (HTTP status, body, whether a write committed, webhook events)
Answer = tuple[int, bytes, bool, list]


class Abort(Exception):
    """The request is over: answered already, or the connection dropped without an answer."""


@dataclass
class ApiCall:
    """One request under ``/v3/company/{realmId}``: ``rest`` is the path after the realm id, split on ``/``;
    ``kind`` is what it does (read, create, update ... query, cdc, batch), as stats count it."""

    method: str
    rest: list[str]
    params: dict[str, str]
    body: bytes
    path: str
    kind: str


def fault_answer(h: Handler, err: QBOError) -> Answer:
    return err.status, dumps({"Fault": err.fault(), "time": fmt_time(h.sandbox.clock.time())}), False, []


def unsupported_path(h: Handler, path: str) -> QBOError:
    host = h.headers.get("Host", "localhost")
    return unsupported(f"Operation Could not find resource for relative : {path} of full path: "
                       f"http://{host}{path} is not supported.")


def json_answer(h: Handler, obj: Any) -> Answer:
    return 200, dumps({**obj, "time": fmt_time(h.sandbox.clock.time())}), False, []
