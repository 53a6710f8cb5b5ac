"""The Celery application: Redis broker when REDIS_URL is set, else the filesystem transport."""

import os

from celery import Celery

from mailcore.metrics_http import connect_worker_signals
from mailcore.private import restrict_umask

# The worker and beat write the broker's files and the beat schedule: private, like the rest.
restrict_umask()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")

app = Celery("correio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# `celery worker` serves its metrics (and its pool children's) on CORREIO_METRICS_ADDR.
connect_worker_signals()
