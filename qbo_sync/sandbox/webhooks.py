"""Webhook notifications: signed, ordered, retried on Intuit's schedule.

Every change made through the API queues an event. A background thread sends what is queued as one
notification (legacy ``eventNotifications`` grouped per realm, or a CloudEvents array), signed with
``intuit-signature = base64(HMAC-SHA256(verifier_token, raw body))``. A delivery that does not get a 2xx
within 3 s is retried after 10s, 20s, 30s, 5m, 20m, 2h, 4h, 6h and then every 6h (divided by
``time_scale``, measured on the sandbox clock); later events wait behind it (ordered queue).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.error
import urllib.request
import uuid
from collections import deque
from typing import Any

from .util import fmt_utc

RETRY_SCHEDULE = (10, 20, 30, 300, 1200, 7200, 14400, 21600)
DELIVERY_TIMEOUT = 3.0
OPERATION_TYPES = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
                   "Merge": "merged"}


def sign(body: bytes, verifier_token: str) -> str:
    """The ``intuit-signature`` header value for ``body``."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str, verifier_token: str) -> bool:
    return hmac.compare_digest(sign(body, verifier_token), signature.strip())


def legacy_payload(events: list[tuple]) -> bytes:
    """events: (realm, entity, id, operation, epoch[, deleted id]) -> eventNotifications body. A merge names the
    surviving record as ``id`` and the merged-away one as ``deletedId``."""
    by_realm: dict[str, list[dict]] = {}
    for realm, entity, oid, op, ts, *rest in events:
        entry = {"name": entity, "id": oid, "operation": op, "lastUpdated": fmt_utc(ts)}
        if rest and rest[0]:
            entry["deletedId"] = rest[0]
        by_realm.setdefault(realm, []).append(entry)
    body = {"eventNotifications": [{"realmId": r, "dataChangeEvent": {"entities": ents}}
                                   for r, ents in by_realm.items()]}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def cloudevents_payload(events: list[tuple], source: str) -> bytes:
    out = []
    for realm, entity, oid, op, ts, *rest in events:
        out.append({
            "specversion": "1.0",
            "id": f"{uuid.uuid4()}-{entity}-{oid}",
            "source": source,
            "type": f"qbo.{entity.lower()}.{OPERATION_TYPES.get(op, op.lower())}.v1",
            "datacontenttype": "application/json",
            "time": fmt_utc(ts),
            "intuitentityid": oid,
            "intuitaccountid": realm,
            "data": {"deletedid": rest[0]} if rest and rest[0] else {},
        })
    return json.dumps(out, separators=(",", ":")).encode("utf-8")


class Dispatcher:
    """Background sender. ``deliveries`` records every attempt for tests and stats."""

    def __init__(self, sandbox: Any):
        self.sb = sandbox
        self.cond = threading.Condition()
        self.pending: deque[tuple[str, str, str, str, float]] = deque()
        self.current: dict | None = None  # the delivery being (re)tried
        self.attempts: list[dict] = []
        self.delivered = 0
        self.failed_attempts = 0
        self.source = "intuit." + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        self._stop = False
        self._thread: threading.Thread | None = None
        sandbox.clock.on_advance(self.wake)

    def start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="qbo-sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self.cond:
            self._stop = True
            self.cond.notify_all()
        if self._thread:
            self._thread.join(timeout=5)

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def emit(self, realm_id: str, events: list[tuple]) -> None:
        """``events``: (entity, id, operation, epoch[, deleted id of a merge])."""
        if not self.sb.options.get("webhook_url") or not events:
            return
        with self.cond:
            for entity, oid, op, ts, *rest in events:
                self.pending.append((realm_id, entity, oid, op, ts, *rest))
            self.cond.notify_all()

    def idle(self) -> bool:
        with self.cond:
            return not self.pending and self.current is None

    def stats(self) -> dict:
        with self.cond:
            return {"pending_events": len(self.pending) + (len(self.current["events"]) if self.current else 0),
                    "delivered": self.delivered, "failed_attempts": self.failed_attempts,
                    "retrying": self.current is not None and self.current["attempt"] > 0}

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            with self.cond:
                while not self._stop:
                    if self.current is None and self.pending:
                        events = list(self.pending)
                        self.pending.clear()
                        self.current = {"events": events, "attempt": 0, "due": self.sb.clock.time()}
                    if self.current is not None:
                        wait = self.current["due"] - self.sb.clock.time()
                        if wait <= 0:
                            break
                        self.cond.wait(timeout=min(wait, 1.0))
                    else:
                        self.cond.wait(timeout=1.0)
                if self._stop:
                    return
                job = self.current
            assert job is not None
            ok = self._deliver(job)
            with self.cond:
                if ok:
                    self.delivered += 1
                    self.current = None
                else:
                    self.failed_attempts += 1
                    idx = min(job["attempt"], len(RETRY_SCHEDULE) - 1)
                    job["attempt"] += 1
                    job["due"] = self.sb.clock.time() + RETRY_SCHEDULE[idx] / self.sb.options["time_scale"]

    def _deliver(self, job: dict) -> bool:
        opts = self.sb.options
        url = opts.get("webhook_url")
        if not url:
            return True  # nowhere to send: drop
        if opts.get("cloudevents"):
            body = cloudevents_payload(job["events"], self.source)
        else:
            body = legacy_payload(job["events"])
        now = self.sb.clock.time()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "accept": "application/json",
            "user-agent": "intuit_notification_server/0.1",
            "intuit-t-id": str(uuid.uuid4()),
            "intuit-created-time": fmt_utc(now),
            "intuit-notification-schema-version": "0.1",
            "intuit-signature": sign(body, opts.get("verifier_token") or ""),
        }
        record: dict[str, Any] = {"attempt": job["attempt"], "time": now, "events": len(job["events"])}
        try:
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            with urllib.request.urlopen(req, timeout=DELIVERY_TIMEOUT) as resp:  # noqa: S310
                record["status"] = resp.status
                ok = 200 <= resp.status < 300
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
            ok = False
        except Exception as exc:
            record["error"] = type(exc).__name__
            ok = False
        with self.cond:
            self.attempts.append(record)
            del self.attempts[:-1000]
        return ok
