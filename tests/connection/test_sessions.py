"""One pool of HTTP sessions per process, and caches that reset themselves when qbo_sync's settings change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qbo_sync import adapters, crypto
from qbo_sync.services import ratelimit, sessions
from qbo_sync.services.connect import client_for
from qbo_sync.services.tokens import oauth_client
from tests.connection.conftest import connect_realm

pytestmark = pytest.mark.django_db


def test_clients_of_a_realm_share_its_pooled_session_and_closing_one_leaves_the_others_working(qbo_env) -> None:
    realm = qbo_env.create_realm(company_name="Pooled Co")
    connection = connect_realm(qbo_env, realm)
    first, second = client_for(connection), client_for(connection)
    assert first.session is second.session is sessions.api_session(realm)
    assert not first.owns_session  # the pool's: closing a client must not drop the realm's connections
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.company_info()
    assert second.company_info()["CompanyName"] == "Pooled Co"
    assert oauth_client()._session is sessions.oauth_session()  # token refreshes use the pool too


def test_every_cache_built_from_settings_resets_itself_when_they_change(qbo_env, settings: Any) -> None:
    realm = qbo_env.create_realm(company_name="Reset Co")
    client_for(connect_realm(qbo_env, realm))  # a pooled session, a throttle, the adapters, the token cipher
    adapters.registry.entities()
    assert len(sessions.pool) >= 1 and ratelimit._throttles and adapters.registry._by_entity is not None
    assert crypto._multifernet.cache_info().currsize == 1

    settings.QBO_SYNC = {**settings.QBO_SYNC, "CHUNK_SIZE": 61}  # Django's setting_changed, as override_settings

    assert len(sessions.pool) == 0 and not ratelimit._throttles and adapters.registry._by_entity is None
    assert crypto._multifernet.cache_info().currsize == 0


def test_the_settings_module_reaches_into_no_other_module() -> None:
    """Each cache registers its own reset (qbo_sync.conf.on_reload); conf imports none of them."""
    import qbo_sync.conf

    source = Path(qbo_sync.conf.__file__).read_text(encoding="utf-8")
    for name in ("adapters", "crypto", "services"):
        assert f"from qbo_sync import {name}" not in source and f"qbo_sync.{name} import" not in source
