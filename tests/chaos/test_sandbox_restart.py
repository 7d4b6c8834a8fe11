"""A sandbox restarted from its saved state must not keep answering on the old server's keep-alive connections
(found by the chaos suite: a client's pooled connection kept talking to the stopped sandbox, which knew nothing of
tokens or records created after the restart)."""

from __future__ import annotations

import requests

from qbo_sync.sandbox import Sandbox


def test_keep_alive_connections_reach_the_restarted_sandbox(tmp_path) -> None:
    state = str(tmp_path / "state.json")
    first = Sandbox(port=0, state_file=state).start()
    realm = first.create_realm()
    port = int(first.base_url.rsplit(":", 1)[1])
    session = requests.Session()

    def read_company(base_url: str, token: str) -> int:
        return session.get(f"{base_url}/v3/company/{realm}/companyinfo/{realm}",
                           headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                           timeout=5).status_code

    assert read_company(first.base_url, first.issue_tokens(realm)["access_token"]) == 200  # a pooled connection
    first.stop()
    second = Sandbox(port=port, state_file=state).start()
    try:
        token = second.issue_tokens(realm)["access_token"]  # known to the new server only
        statuses = []
        for _ in range(3):
            try:
                statuses.append(read_company(second.base_url, token))
            except requests.ConnectionError:
                statuses.append("reset")  # the old connection was closed: a client retries on a new one
        assert statuses[-1] == 200 and 401 not in statuses, statuses
    finally:
        second.stop()
        session.close()
