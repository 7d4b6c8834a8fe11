"""Who owns an HTTP session, and what ``close()`` closes: a client closes the session it built (or was handed with
``owns_session=True``), never a pool's; the pool closes its own."""

from __future__ import annotations

from unittest import mock

import pytest

from qbo_sync.client import InMemoryTokenProvider, QboClient, QboOAuthClient, SessionPool, new_session
from tests.client.fakes import Reply, Script, make_client, token_set


def _client(**kwargs) -> QboClient:
    return QboClient("123", api_base_url="http://qbo.test", tokens=InMemoryTokenProvider(token_set()), **kwargs)


def test_a_client_given_no_session_builds_one_owns_it_and_closes_it() -> None:
    client = _client(pool_size=7)
    assert client.owns_session
    assert client.session.get_adapter("https://qbo.test")._pool_maxsize == 7
    with mock.patch.object(client.session, "close") as close:
        client.close()
    close.assert_called_once_with()
    assert client.closed


def test_a_shared_session_stays_open_for_the_other_clients_and_is_closed_by_its_pool() -> None:
    pool = SessionPool()
    shared = pool.get("api", "http://qbo.test", "123", pool_size=4)
    first, second = _client(session=shared), _client(session=shared)
    assert not first.owns_session and pool.get("api", "http://qbo.test", "123") is shared
    with mock.patch.object(shared, "close") as close:
        with first:  # leaving the block closes the client, not the pool's session
            pass
        close.assert_not_called()
        assert first.closed and not second.closed
        pool.close()
    close.assert_called_once_with()
    assert len(pool) == 0 and pool.get("api", "http://qbo.test", "123") is not shared


def test_a_session_handed_over_is_owned() -> None:
    session = new_session()
    client = _client(session=session, owns_session=True)
    with mock.patch.object(session, "close") as close:
        client.close()
    close.assert_called_once_with()


def test_a_closed_client_sends_nothing_more() -> None:
    client, adapter, _ = make_client(Script(Reply(body={"Customer": {"Id": "7", "SyncToken": "0"}})))
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.read("Customer", "7")
    assert adapter.sent == []


def test_the_pool_keys_sessions_by_what_it_is_asked_and_sizes_them() -> None:
    pool = SessionPool()
    a, b = pool.get("api", "h", "1", pool_size=3), pool.get("api", "h", "2", pool_size=3)
    assert a is not b and len(pool) == 2
    assert a.get_adapter("http://h")._pool_maxsize == 3 and a.get_adapter("http://h").max_retries.total == 0
    pool.close()


def test_the_oauth_client_owns_only_the_session_it_built() -> None:
    own = QboOAuthClient("id", "secret")
    shared = new_session()
    borrowing = QboOAuthClient("id", "secret", session=shared)
    assert own.owns_session and not borrowing.owns_session
    with mock.patch.object(own._session, "close") as closed_own, mock.patch.object(shared, "close") as closed_shared:
        own.close()
        borrowing.close()
    closed_own.assert_called_once_with()
    closed_shared.assert_not_called()


def test_the_pool_closes_its_least_recently_used_session_beyond_its_cap() -> None:
    """A worker serving many companies keeps at most ``max_sessions`` realms' connections open."""
    pool = SessionPool(max_sessions=2)
    first, second = pool.get("api", "h", "1"), pool.get("api", "h", "2")
    assert pool.get("api", "h", "1") is first  # used again: now the most recent
    with mock.patch.object(second, "close") as close_second, mock.patch.object(first, "close") as close_first:
        third = pool.get("api", "h", "3")
    close_second.assert_called_once_with()
    close_first.assert_not_called()
    assert len(pool) == 2 and pool.get("api", "h", "1") is first and pool.get("api", "h", "3") is third
    assert pool.get("api", "h", "2") is not second  # comes back as a new session
    with pytest.raises(ValueError, match="at least 1"):
        SessionPool(max_sessions=0)
