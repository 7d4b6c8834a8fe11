"""ASGI entry point for the Batchly host project."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchly.settings")

application = get_asgi_application()
