from django.apps import AppConfig


class QboSyncConfig(AppConfig):
    name = "qbo_sync"
    verbose_name = "QuickBooks sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # System checks and signal receivers, and nothing else: no queries, no schedules here.
        from qbo_sync import checks, receivers, signals  # noqa: F401

        receivers.connect()
