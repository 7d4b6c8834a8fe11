"""The integration fixtures (sandbox settings, a connected organization, the accountant, run_queue): the
model-based test makes its own connections per history; its kept regressions use the ordinary ones."""

from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401
