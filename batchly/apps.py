from django.apps import AppConfig


class BatchlyConfig(AppConfig):
    name = "batchly"
    verbose_name = "Batchly"
    default_auto_field = "django.db.models.BigAutoField"
