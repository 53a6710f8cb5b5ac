"""WSGI entry point (gunicorn in docker-compose)."""

import os

from django.core.wsgi import get_wsgi_application

from mailcore.private import restrict_umask

restrict_umask()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
application = get_wsgi_application()
