"""HTTP client for the QuickBooks Online Accounting API: OAuth2, throttle, retries, query, CDC, batch.

Plain Python: nothing here imports the ORM. What must be shared between processes (stored tokens and their
refresh lock, the per-realm throttle's counters) is reached through :class:`TokenProvider` and
:class:`Throttle`, which the services layer implements with the database or Redis.
"""

from qbo_sync.client.errors import error_from_fault, error_from_response, parse_fault_body
from qbo_sync.client.http import (
    CDC_MAX_LOOKBACK,
    CDC_OBJECT_CAP,
    MAX_BATCH_ITEMS,
    BatchOperation,
    BatchResult,
    CdcResult,
    QboClient,
    QueryPage,
    backoff_delay,
)
from qbo_sync.client.oauth import ACCOUNTING_SCOPE, QboOAuthClient, TokenSet
from qbo_sync.client.query import escape_value, in_list, quote_value
from qbo_sync.client.sessions import SessionPool, new_session
from qbo_sync.client.throttle import InProcessThrottle, RequestKind, Throttle, default_throttle
from qbo_sync.client.tokens import InMemoryTokenProvider, TokenProvider

__all__ = [
    "ACCOUNTING_SCOPE",
    "CDC_MAX_LOOKBACK",
    "CDC_OBJECT_CAP",
    "MAX_BATCH_ITEMS",
    "BatchOperation",
    "BatchResult",
    "CdcResult",
    "InMemoryTokenProvider",
    "InProcessThrottle",
    "QboClient",
    "QboOAuthClient",
    "QueryPage",
    "RequestKind",
    "SessionPool",
    "Throttle",
    "TokenProvider",
    "TokenSet",
    "backoff_delay",
    "default_throttle",
    "error_from_fault",
    "error_from_response",
    "escape_value",
    "in_list",
    "new_session",
    "parse_fault_body",
    "quote_value",
]
