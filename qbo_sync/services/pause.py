"""Pause and resume an organization's sync (an accountant's month-end close, an investigation).

While paused, work still queues (saves, webhooks, nightly pulls and "sync now" add items as usual), but nothing is
claimed, so nothing is sent to QuickBooks or pulled from it, and the nightly reconciliation skips the organization.
Resuming makes the waiting work due at once. Progress figures say "paused" and why; both actions are logged with who
did them.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from qbo_sync.models import QboConnection, QueueItem
from qbo_sync.services import mappings as maps
from qbo_sync.services import wakeup
from qbo_sync.services.jobs import QboInputError

MAX_REASON = 255


def _locked_connection(organization_id: int) -> QboConnection:
    conn = QboConnection.objects.select_for_update().filter(organization_id=organization_id).first()
    if conn is None:
        raise QboInputError("This organization has no QuickBooks connection to pause or resume.", "organization")
    return conn


def pause(organization_id: int, reason: str, user: Any = None, *, surface: str = "") -> QboConnection:
    """Stop sending and pulling for the organization until :func:`resume`. ``reason`` is shown wherever progress is."""
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise QboInputError("Say why the sync is paused (it is shown on every progress page).", "reason")
    if len(reason) > MAX_REASON or "\x00" in reason:
        raise QboInputError(f"The reason must be at most {MAX_REASON} printable characters.", "reason")
    with transaction.atomic():
        conn = _locked_connection(organization_id)
        conn.paused_at = conn.paused_at or timezone.now()
        conn.pause_reason = reason
        conn.paused_by = user if getattr(user, "pk", None) else None
        conn.save(update_fields=["paused_at", "pause_reason", "paused_by", "updated_at"])
        maps.log(organization_id, "paused", f"Sync paused: {reason}", surface=surface,
                 user=getattr(user, "pk", None))
    return conn


def resume(organization_id: int, user: Any = None, *, surface: str = "") -> QboConnection:
    """Undo :func:`pause`: the work that waited is due now and a drain is kicked. Resuming twice is harmless."""
    with transaction.atomic():
        conn = _locked_connection(organization_id)
        was_paused = conn.paused_at is not None
        conn.paused_at, conn.pause_reason, conn.paused_by = None, "", None
        conn.save(update_fields=["paused_at", "pause_reason", "paused_by", "updated_at"])
        if was_paused:
            maps.log(organization_id, "resumed", "Sync resumed.", surface=surface, user=getattr(user, "pk", None))
            waiting = QueueItem.objects.filter(organization_id=organization_id, status=QueueItem.Status.PENDING)
            if waiting.exists():
                wakeup.kick_on_commit()
    return conn
