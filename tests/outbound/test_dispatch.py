"""Tasks and publishing them by name (mailcore/tasks.py, mailcore/services/dispatch.py): what
reaches a real broker (the embedded filesystem transport, in a fresh process) names the task
the worker registers, with the arguments the worker expects; the tasks run as plain functions;
and the service layer never imports the task module."""

import ast
import json
import os
import subprocess
import sys
from base64 import b64decode
from pathlib import Path

from mailcore import tasks
from mailcore.services import dispatch
from mailcore.services.outbound.queue import enqueue_outbound
from tests.factories import make_message
from tests.outbound.helpers import SENDER
from webmail.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_every_published_name_is_a_registered_task():
    registered = {
        dispatch.DELIVER_OUTBOUND: tasks.deliver_outbound,
        dispatch.DELIVER_OUTBOUND_BATCH: tasks.deliver_outbound_batch,
        dispatch.SWEEP_OUTBOUND: tasks.sweep_outbound,
        dispatch.CLEANUP_OUTBOUND: tasks.cleanup_outbound,
    }
    for name, task in registered.items():
        assert task.name == name
        assert app.tasks[name].__module__ == "mailcore.tasks" and app.tasks[name].name == name


def test_dispatch_publishes_the_delivery_tasks_by_name_to_the_broker(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from mailcore.services import dispatch\n"
        "dispatch.dispatch(7)\n"
        "dispatch.dispatch_many([1, 2, 3])\n"
        "dispatch.dispatch_at(9, timezone.now() + timedelta(minutes=5))\n"
        "dispatch.dispatch_at(10, timezone.now() + timedelta(days=1))  # left to the sweep\n"
    )
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CORREIO_", "CELERY_")) and k not in ("REDIS_URL",)}
    env.update({"CORREIO_VAR_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
                "CORREIO_OUTBOUND_BATCH": "2", "DJANGO_SETTINGS_MODULE": "webmail.settings"})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    published = []
    for path in sorted((tmp_path / "broker" / "queue").iterdir(), key=lambda p: p.name):
        envelope = json.loads(path.read_bytes())
        body = json.loads(b64decode(envelope["body"]))
        published.append((envelope["headers"]["task"], body[0], envelope["headers"]["eta"]))
    assert sorted((name, args) for name, args, _ in published) == sorted([
        ("mailcore.tasks.deliver_outbound", [7]),
        ("mailcore.tasks.deliver_outbound_batch", [[1, 2]]),
        ("mailcore.tasks.deliver_outbound_batch", [[3]]),
        ("mailcore.tasks.deliver_outbound", [9]),
    ])
    timed = [eta for name, args, eta in published if args == [9]]
    assert timed[0] is not None  # a countdown, not an immediate task
    assert all(eta is None for _, args, eta in published if args != [9])


def test_no_service_module_imports_the_tasks_module():
    offenders = []
    for path in (ROOT / "mailcore" / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "mailcore.tasks" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_celery_tasks_run_as_plain_functions(mailbox, remote_mx):
    from mailcore import tasks

    far = remote_mx("remote.test")
    result = enqueue_outbound(make_message(), SENDER, ["x@remote.test"])
    assert tasks.deliver_outbound(result.outbound_id) == {
        "claimed": True, "delivered": 1, "deferred": 0, "bounced": 0, "expired": 0}
    assert len(far.received) == 1
    assert tasks.cleanup_outbound() == 0
