from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """Registers ``manage.py bench`` and ``manage.py chaos``; no models."""

    name = "benchmarks"
    verbose_name = "qbo_sync development harnesses"
