"""The integration fixtures (a Batchly organization connected to a sandbox realm, the accountant, run_queue)."""

from tests.api.conftest import make_conflict, make_push_job  # noqa: F401 (the API's helpers, for the permission tests)
from tests.connection.conftest import qbo_env  # noqa: F401 (qbo_sync pointed at the sandbox)
from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401
