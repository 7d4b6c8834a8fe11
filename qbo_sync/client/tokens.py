"""Where the HTTP client gets its bearer token.

The client never stores tokens itself. It asks a :class:`TokenProvider` for the current access token, and
after a 401 calls ``refresh(stale_access_token)`` once. Passing the token that failed lets the provider tell
"someone already refreshed, here is the new one" from "refresh now": with many workers hitting an expired
token at the same moment, exactly one refresh must reach Intuit, or the losers present a rotated-away refresh
token and get ``invalid_grant``. Implementations therefore guarantee a single-flight refresh per realm. The
services layer does it across processes with a database row lock; :class:`InMemoryTokenProvider` does it
across threads for tests and scripts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from qbo_sync.client.oauth import TokenSet
from qbo_sync.exceptions import QboAuthError

__all__ = ["InMemoryTokenProvider", "TokenProvider"]

logger = logging.getLogger(__name__)


@runtime_checkable
class TokenProvider(Protocol):
    def access_token(self) -> str:
        """A currently valid access token (refreshing first if it is about to expire)."""
        ...

    def refresh(self, stale_access_token: str) -> str:
        """Return an access token newer than ``stale_access_token``, refreshing only if nobody else has yet.

        Raises :class:`~qbo_sync.exceptions.QboReauthRequired` when the refresh token is no longer accepted.
        """
        ...


class InMemoryTokenProvider:
    """Thread-safe, single-flight provider holding one realm's tokens in memory.

    ``refresher`` is usually ``QboOAuthClient.refresh``; ``on_refresh`` receives every new :class:`TokenSet`
    (persist it there: the old refresh token may stop working).
    """

    def __init__(
        self,
        tokens: TokenSet,
        refresher: Callable[[str], TokenSet] | None = None,
        *,
        on_refresh: Callable[[TokenSet], None] | None = None,
        refresh_margin: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tokens = tokens
        self._refresher = refresher
        self._on_refresh = on_refresh
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self.refresh_count = 0

    def __repr__(self) -> str:
        expires = self._tokens.expires_at.isoformat()
        return f"InMemoryTokenProvider(expires_at={expires}, refreshes={self.refresh_count})"

    @property
    def tokens(self) -> TokenSet:
        with self._lock:
            return self._tokens

    def access_token(self) -> str:
        with self._lock:
            current = self._tokens
        if self._refresher is not None and current.access_expires_within(self._margin, now=self._clock()):
            return self.refresh(current.access_token)
        return current.access_token

    def refresh(self, stale_access_token: str) -> str:
        with self._lock:
            if self._tokens.access_token != stale_access_token:
                return self._tokens.access_token  # another thread refreshed while we waited
            if self._refresher is None:
                raise QboAuthError("access token rejected and this token provider cannot refresh")
            new = self._refresher(self._tokens.refresh_token)
            self._tokens = new
            self.refresh_count += 1
            logger.info("QBO access token refreshed (refresh #%s)", self.refresh_count)
            if self._on_refresh is not None:
                self._on_refresh(new)
            return new.access_token

    def set_tokens(self, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens = tokens
