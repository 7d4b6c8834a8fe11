"""qbo_sync's data model. See docs/architecture.md for how the rows relate."""

from qbo_sync.models.audit import AuditEntry
from qbo_sync.models.conflict import Conflict
from qbo_sync.models.connection import OAuthState, QboConnection
from qbo_sync.models.cursor import PullCursor
from qbo_sync.models.log import SyncLog
from qbo_sync.models.mapping import EntityMapping
from qbo_sync.models.queue import DrainSignal, QueueItem, SyncJob
from qbo_sync.models.throttle import ThrottleLease, ThrottleRealm, ThrottleStart
from qbo_sync.models.webhook import RefusalCount, WebhookEvent

__all__ = [
    "AuditEntry",
    "Conflict",
    "DrainSignal",
    "EntityMapping",
    "OAuthState",
    "PullCursor",
    "QboConnection",
    "QueueItem",
    "RefusalCount",
    "SyncJob",
    "SyncLog",
    "ThrottleLease",
    "ThrottleRealm",
    "ThrottleStart",
    "WebhookEvent",
]
