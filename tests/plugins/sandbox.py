"""Shared pytest fixtures for the QBO sandbox.

Register with ``pytest_plugins = ["tests.plugins.sandbox"]`` in ``tests/conftest.py``.

* ``qbo_sandbox`` (session): ONE :class:`qbo_sync.sandbox.Sandbox` started in-process on 127.0.0.1 and an
  ephemeral port, in a background thread. Use ``qbo_sandbox.base_url``. Its global options are QBO's defaults
  (500 req/min, 10 in flight, 40 batches/min, latency and faults off) -- do not change them globally from a
  test; use per-realm overrides instead: ``qbo_sandbox.configure(realm_id, fault_rate=1.0)``.
* ``qbo_realm`` (function): a fresh, empty realm (unique id) in that sandbox; yields its id. On teardown its
  per-realm overrides and throttle windows are reset (``qbo_sandbox.reset(realm_id)``).
* ``qbo_tokens`` (function): a token pair for ``qbo_realm`` (``Sandbox.issue_tokens``), as the token endpoint
  returns it plus ``realmId``.
* ``qbo_fail_next`` (function): ``Sandbox.fail_next`` bound to ``qbo_realm``: ``qbo_fail_next("throttle", times=2,
  entity="Customer", operation="create")`` serves QBO's 429 to the next two customer creates of that realm. Scripts
  left over are dropped on teardown (with the realm's overrides).
"""

from __future__ import annotations

import functools

import pytest

from qbo_sync.sandbox import Sandbox


@pytest.fixture(scope="session")
def qbo_sandbox():
    sandbox = Sandbox(host="127.0.0.1", port=0)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def qbo_realm(qbo_sandbox):
    realm_id = qbo_sandbox.create_realm()
    try:
        yield realm_id
    finally:
        qbo_sandbox.reset(realm_id)


@pytest.fixture
def qbo_tokens(qbo_sandbox, qbo_realm):
    return qbo_sandbox.issue_tokens(qbo_realm)


@pytest.fixture
def qbo_fail_next(qbo_sandbox, qbo_realm):
    return functools.partial(qbo_sandbox.fail_next, realm_id=qbo_realm)
