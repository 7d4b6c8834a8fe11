"""The integration fixtures the model-based test reuses (sandbox settings; connections are made per history)."""

from tests.integration.conftest import sandbox_settings  # noqa: F401
