"""The demo host's settings with QBO_SYNC_ORGANIZATION_MODEL left out (what a new project forgets)."""

from batchly.settings import *  # noqa: F403

del QBO_SYNC_ORGANIZATION_MODEL  # noqa: F821
