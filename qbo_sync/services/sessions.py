"""This process's HTTP sessions to QuickBooks: one :class:`~qbo_sync.client.SessionPool` for every client the
services build (API calls per realm and API host, OAuth calls per token endpoint). The pool owns them; it closes
them when qbo_sync's settings change (``qbo_sync.conf.on_reload``) and on :func:`close_sessions`."""

from __future__ import annotations

import requests

from qbo_sync.client.sessions import SessionPool
from qbo_sync.conf import on_reload, qbo_settings

__all__ = ["api_session", "close_sessions", "oauth_session", "pool"]

pool = SessionPool()


def api_session(realm_id: str) -> requests.Session:
    """The session for a realm's API calls, its connection pool sized to ``MAX_CONCURRENT_REQUESTS``."""
    return pool.get("api", qbo_settings.API_BASE_URL, realm_id, pool_size=int(qbo_settings.MAX_CONCURRENT_REQUESTS))


def oauth_session() -> requests.Session:
    """The session for token refreshes and revokes (a couple at a time per process at most)."""
    return pool.get("oauth", qbo_settings.TOKEN_URL, pool_size=2)


@on_reload
def close_sessions() -> None:
    """Close every pooled session of this process (worker shutdown, changed settings, tests)."""
    pool.close()
