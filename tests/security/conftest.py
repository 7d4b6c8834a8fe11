"""The integration fixtures (a Batchly organization connected to a sandbox realm, the accountant, run_queue)."""

# The API's tenants and helpers (organizations A and B, each connected), for the permission and audit tests.
from tests.api.conftest import make_conflict, make_push_job, org_a, org_b  # noqa: F401
from tests.connection.conftest import qbo_env  # noqa: F401 (qbo_sync pointed at the sandbox)
from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401
