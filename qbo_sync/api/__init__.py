"""qbo_sync's DRF API (progress, jobs, conflicts, connection, record status). See ``qbo_sync.api.urls``."""
