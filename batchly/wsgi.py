"""WSGI entry point for the Batchly host project."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchly.settings")

application = get_wsgi_application()
