"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from mailcore.private import restrict_umask

restrict_umask()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
application = get_asgi_application()
