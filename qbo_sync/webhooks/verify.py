"""Signature check and payload parsing for QuickBooks webhooks (both the legacy and the CloudEvents format)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from qbo_sync.exceptions import QboWebhookSignatureError


def signature(body: bytes, verifier_token: str) -> str:
    """``intuit-signature``: base64 of HMAC-SHA256 over the raw body, keyed with the app's verifier token."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, verifier_token: str) -> None:
    """Raise unless ``header`` is the body's signature. Checked before parsing, compared in constant time."""
    if not verifier_token:
        raise QboWebhookSignatureError("QBO_WEBHOOK_VERIFIER_TOKEN is not set; webhooks cannot be verified.")
    if not header:
        raise QboWebhookSignatureError("The intuit-signature header is missing.")
    if not hmac.compare_digest(signature(body, verifier_token).encode(), header.strip().encode()):
        raise QboWebhookSignatureError("The intuit-signature header does not match the body.")


@dataclass(frozen=True)
class EntityChange:
    realm_id: str
    entity: str  # QBO's name, e.g. "Customer"
    qbo_id: str
    operation: str  # Create | Update | Delete | Merge | Void | Emailed ...
    last_updated: str
    event_id: str
    format: str
    deleted_id: str = ""


class WebhookPayloadError(ValueError):
    """The body verified but is not a webhook payload we understand."""


_CLOUD_ENTITY = {"customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment"}


def parse(body: bytes) -> list[EntityChange]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"The body is not JSON: {exc}") from None
    if isinstance(data, list):
        return [_cloud_event(e) for e in data]
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        return [change for note in data["eventNotifications"] for change in _legacy(note)]
    raise WebhookPayloadError("Neither a legacy eventNotifications object nor a CloudEvents array.")


def _legacy(note: Any) -> list[EntityChange]:
    if not isinstance(note, dict) or not note.get("realmId"):
        raise WebhookPayloadError("An eventNotifications entry lacks realmId.")
    entities = (note.get("dataChangeEvent") or {}).get("entities")
    if not isinstance(entities, list):
        raise WebhookPayloadError("An eventNotifications entry lacks dataChangeEvent.entities.")
    changes = []
    for e in entities:
        if not isinstance(e, dict) or not e.get("name") or not e.get("id"):
            raise WebhookPayloadError("An entity change lacks its name or id.")
        changes.append(EntityChange(
            realm_id=str(note["realmId"]), entity=str(e["name"]), qbo_id=str(e["id"]),
            operation=str(e.get("operation") or "Update"), last_updated=str(e.get("lastUpdated") or ""),
            event_id="", format="legacy", deleted_id=str(e.get("deletedId") or ""),
        ))
    return changes


def _cloud_event(event: Any) -> EntityChange:
    if not isinstance(event, dict) or event.get("specversion") != "1.0":
        raise WebhookPayloadError("A CloudEvents entry lacks specversion 1.0.")
    parts = str(event.get("type") or "").split(".")
    if len(parts) < 3 or parts[0] != "qbo" or not event.get("intuitentityid") or not event.get("intuitaccountid"):
        raise WebhookPayloadError("A CloudEvents entry lacks type qbo.<entity>.<operation>, its entity or account.")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return EntityChange(
        realm_id=str(event["intuitaccountid"]), entity=_CLOUD_ENTITY.get(parts[1], parts[1].title()),
        qbo_id=str(event["intuitentityid"]), operation=parts[2].title(), last_updated=str(event.get("time") or ""),
        event_id=str(event.get("id") or ""), format="cloudevents", deleted_id=str(data.get("deletedid") or ""),
    )
