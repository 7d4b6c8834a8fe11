"""A fake transport for the client's fast unit tests: real client code down to ``Session.send``.

Integration tests use the sandbox (a real HTTP server); this fake is only for answers that are hard to provoke
there, and to count exactly what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from qbo_sync.client import InMemoryTokenProvider, InProcessThrottle, QboClient, TokenSet

DATA = Path(__file__).parent / "data"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


@dataclass
class Sent:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    raise_exc: Exception | None = None


Handler = Callable[[Sent], Reply]


class FakeAdapter(BaseAdapter):
    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[Sent] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body: Any = request.body
        if isinstance(body, bytes) and body:
            if request.headers.get("Content-Type") == "application/text":
                body = body.decode("utf-8")
            else:
                try:
                    body = json.loads(body)
                except ValueError:
                    pass
        sent = Sent(request.method or "", parts.path, params, dict(request.headers), body)
        self.sent.append(sent)
        reply = self.handler(sent)
        if reply.raise_exc is not None:
            raise reply.raise_exc
        response = requests.Response()
        response.status_code = reply.status
        payload = reply.body
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        response._content = payload.encode() if isinstance(payload, str) else payload
        response.headers = CaseInsensitiveDict({"intuit_tid": "tid-test", **reply.headers})
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class Script:
    """Answers replies in order (the last one repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, sent: Sent) -> Reply:
        reply = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        return reply


ACCESS = "access-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
REFRESH = "refresh-token-RRRRRRRRRRRRRRRRRRRRRRRRRRRR"


def token_set(access: str = ACCESS, refresh: str = REFRESH, hours: float = 1) -> TokenSet:
    now = datetime.now(UTC)
    return TokenSet(access, refresh, now + timedelta(hours=hours), now + timedelta(days=100))


class CountingRefresher:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, refresh_token: str) -> TokenSet:
        self.calls.append(refresh_token)
        n = len(self.calls)
        return token_set(f"{ACCESS}-{n}", f"{REFRESH}-{n}")


def make_client(handler: Handler, **kwargs: Any) -> tuple[QboClient, FakeAdapter, InMemoryTokenProvider]:
    adapter = FakeAdapter(handler)
    session = requests.Session()
    session.mount("http://", adapter)
    refresher = kwargs.pop("refresher", CountingRefresher())
    tokens = kwargs.pop("tokens", InMemoryTokenProvider(token_set(), refresher))
    sleeps: list[float] = kwargs.pop("sleeps", [])
    throttle = kwargs.pop("throttle", InProcessThrottle(time_scale=10_000, max_wait=5))
    client = QboClient(
        "123",
        api_base_url="http://qbo.test",
        tokens=tokens,
        throttle=throttle,
        session=session,
        sleep=sleeps.append,
        **kwargs,
    )
    return client, adapter, tokens
