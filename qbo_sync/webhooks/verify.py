"""Signature check and payload parsing for QuickBooks webhooks (both the legacy and the CloudEvents format)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from qbo_sync import registry
from qbo_sync.exceptions import QboWebhookSignatureError


def signature(body: bytes, verifier_token: str) -> str:
    """``intuit-signature``: base64 of HMAC-SHA256 over the raw body, keyed with the app's verifier token."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, verifier_token: str) -> None:
    """Raise unless ``header`` is the body's signature. Checked before parsing, compared in constant time."""
    if not verifier_token:
        raise QboWebhookSignatureError('QBO_SYNC["WEBHOOK_VERIFIER_TOKEN"] is not set; webhooks cannot be verified.')
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


#: CloudEvents name entities in lowercase (``qbo.creditmemo.created``): back to QBO's names for those we know.
_CLOUD_ENTITY = {name.lower(): name for name in registry.qbo_names()}


def parse(body: bytes) -> list[EntityChange]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"The body is not JSON: {exc}") from None
    except RecursionError:
        raise WebhookPayloadError("The body is JSON nested too deeply.") from None
    if isinstance(data, list):
        changes = [_cloud_event(e) for e in data]
    elif isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        changes = [change for note in data["eventNotifications"] for change in _legacy(note)]
    else:
        raise WebhookPayloadError("Neither a legacy eventNotifications object nor a CloudEvents array.")
    for change in changes:
        _check_lengths(change)
    return changes


#: The longest value QBO sends in each field (what the event table stores); longer ones are not QBO's.
MAX_LENGTHS = {"realm_id": 32, "entity": 32, "qbo_id": 32, "operation": 32, "last_updated": 40, "event_id": 128,
               "deleted_id": 32}


def _check_lengths(change: EntityChange) -> None:
    for name, limit in MAX_LENGTHS.items():
        value = getattr(change, name)
        if len(value) > limit:
            raise WebhookPayloadError(f"An event's {name} is longer than {limit} characters.")
        if not value.isprintable():
            raise WebhookPayloadError(f"An event's {name} contains control characters.")
        if name in ("realm_id", "entity", "qbo_id") and not value.strip():
            raise WebhookPayloadError(f"An event's {name} is blank.")


def _text(value: Any) -> str:
    """A scalar field of an event as text; objects and lists are not what QBO sends there."""
    if isinstance(value, dict | list):
        raise WebhookPayloadError("An event field holds an object or a list where a value belongs.")
    return "" if value is None else str(value)


def _legacy(note: Any) -> list[EntityChange]:
    if not isinstance(note, dict) or not note.get("realmId"):
        raise WebhookPayloadError("An eventNotifications entry lacks realmId.")
    change = note.get("dataChangeEvent")
    entities = change.get("entities") if isinstance(change, dict) else None
    if not isinstance(entities, list):
        raise WebhookPayloadError("An eventNotifications entry lacks dataChangeEvent.entities.")
    changes = []
    for e in entities:
        if not isinstance(e, dict) or not e.get("name") or not e.get("id"):
            raise WebhookPayloadError("An entity change lacks its name or id.")
        changes.append(EntityChange(
            realm_id=_text(note["realmId"]), entity=_text(e["name"]), qbo_id=_text(e["id"]),
            operation=_text(e.get("operation") or "Update"), last_updated=_text(e.get("lastUpdated")),
            event_id="", format="legacy", deleted_id=_text(e.get("deletedId")),
        ))
    return changes


def _cloud_event(event: Any) -> EntityChange:
    if not isinstance(event, dict) or event.get("specversion") != "1.0":
        raise WebhookPayloadError("A CloudEvents entry lacks specversion 1.0.")
    parts = str(event.get("type") or "").split(".")
    if len(parts) < 3 or parts[0] != "qbo" or not event.get("intuitentityid") or not event.get("intuitaccountid"):
        raise WebhookPayloadError("A CloudEvents entry lacks type qbo.<entity>.<operation>, its entity or account.")
    data = event.get("data")
    if not isinstance(data, dict):
        data = {}
    return EntityChange(
        realm_id=_text(event["intuitaccountid"]), entity=_CLOUD_ENTITY.get(parts[1], parts[1].title()),
        qbo_id=_text(event["intuitentityid"]), operation=parts[2].title(), last_updated=_text(event.get("time")),
        event_id=_text(event.get("id")), format="cloudevents", deleted_id=_text(data.get("deletedid")),
    )
