"""gunicorn settings for the web process, the same in `make run` (Procfile) and docker-compose.

`gunicorn -c python:webmail.gunicorn_conf webmail.wsgi:application`. The address comes from
CORREIO_WEB_ADDR (default 127.0.0.1:8000; compose binds 0.0.0.0:8000 inside the container).
Two worker processes with four threads each suit a 2-core machine: requests are short ORM work,
and threads cover the webmail's polling and slow clients without more memory per worker.
Static files are served by whitenoise from inside Django, so nothing else is needed in front.
"""

import os
import shutil
from pathlib import Path

from webmail.env import env_int, env_str

bind = env_str("CORREIO_WEB_ADDR", "127.0.0.1:8000")
workers = env_int("CORREIO_WEB_WORKERS", 2, minimum=1)
threads = env_int("CORREIO_WEB_THREADS", 4, minimum=1)
worker_class = "gthread"
# A request that takes longer than this is stuck (every page is a few queries); the worker is
# replaced. Slow uploads are bounded by Django's own size limits.
timeout = 60
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500
# Private by default: files the web process creates (SQLite, secrets) are readable by us alone.
umask = 0o077
accesslog = "-"
errorlog = "-"
# gunicorn's header limits, stated here so they are visible: request line and header fields.
limit_request_line = 8190
limit_request_fields = 100
proc_name = "correio-web"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")


def on_starting(server) -> None:
    """Before the workers fork: their metrics go to one fresh folder that /metrics sums
    (prometheus-client's multiprocess mode), whichever worker answers the scrape."""
    from django.conf import settings

    from mailcore.metrics_http import prepare_multiprocess

    prepare_multiprocess(Path(settings.VAR_DIR) / "metrics" / f"web-{os.getpid()}")


def child_exit(server, worker) -> None:
    from mailcore.metrics_http import child_exited

    child_exited(worker.pid)


def on_exit(server) -> None:
    from mailcore.metrics_http import MULTIPROC_ENV

    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
# gunicorn 23+ opens a control socket under ~/.gunicorn; two instances (or a read-only home in a
# container) would collide on it, and nothing of ours uses it.
control_socket_disable = True
