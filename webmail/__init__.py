"""The Correio Django project: settings, URLs, the Celery app, and the HTMX webmail app."""

from webmail.celery import app as celery_app

__all__ = ("celery_app",)
