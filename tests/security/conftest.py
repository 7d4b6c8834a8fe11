"""The integration fixtures (a Batchly organization connected to a sandbox realm, the accountant, run_queue)."""

from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401
