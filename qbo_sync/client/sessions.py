"""HTTP sessions to QuickBooks: the one way a session is built, and a pool that shares them within a process.

A session keeps connections open (TLS handshakes are the slow part of a call to QuickBooks). Who closes it is
explicit: a client given no session builds one and owns it (``QboClient.close()`` closes it); a session taken from
a :class:`SessionPool` belongs to the pool, which closes it (``SessionPool.close()``), never a client that used it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable

import requests
from requests.adapters import HTTPAdapter

__all__ = ["SessionPool", "new_session"]


def new_session(pool_size: int = 10) -> requests.Session:
    """A session whose connection pool holds ``pool_size`` connections per host (the realm's concurrency limit).

    urllib3's retries are off: retries are the client's own (they respect the throttle and keep the requestid).
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, int(pool_size)), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class SessionPool:
    """Sessions shared by every client of a process, one per key (an API host and a realm, say).

    Keys include the process id: a forked child never reuses its parent's sockets, it builds its own.
    Thread-safe. The pool owns its sessions: :meth:`close` closes them all (worker shutdown, changed settings).
    It keeps at most ``max_sessions``: a worker serving hundreds of companies would otherwise hold every realm's
    connections open for its whole life (file descriptors run out first); the least recently used session is
    closed when a new one would exceed the cap (a client still using it reconnects on its next call).
    """

    def __init__(self, max_sessions: int = 64) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[tuple[Hashable, ...], requests.Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, *key: Hashable, pool_size: int = 10) -> requests.Session:
        full = (os.getpid(), *key)
        evicted: list[requests.Session] = []
        with self._lock:
            session = self._sessions.get(full)
            if session is None:
                session = self._sessions[full] = new_session(pool_size)
                while len(self._sessions) > self.max_sessions:
                    evicted.append(self._sessions.popitem(last=False)[1])
            else:
                self._sessions.move_to_end(full)
        for old in evicted:
            old.close()
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
