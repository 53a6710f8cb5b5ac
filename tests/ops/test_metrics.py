"""Metrics scraped over HTTP from the real processes after real traffic: ``runmail`` on
CORREIO_METRICS_ADDR (with a bearer token), gunicorn's ``/metrics`` (loopback only, summed over
its two workers), and a Celery worker whose pool children's relay attempts show on its listener."""

import imaplib
import poplib
import re
import smtplib
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailcore import metrics
from tests.factories import make_message
from tests.ops.procs import ADDRESS, PASSWORD, Deployment, free_port, http_get, wait_port

pytestmark = pytest.mark.slow
TOKEN = "scrape-token-8d1f"


def samples(text: bytes) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: dict, name: str, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in found.items() if n == name and want <= lab)


@pytest.fixture
def deployment(tmp_path):
    site = Deployment(tmp_path / "var")
    site.setup()
    yield site
    site.stop_all()


def test_the_mail_process_serves_its_metrics_after_smtp_imap_and_pop3_traffic(deployment):
    smtp, imap, pop3, metrics_port = free_port(), free_port(), free_port(), free_port()
    proc = deployment.runmail(
        CORREIO_SMTP_ADDR=f"127.0.0.1:{smtp}", CORREIO_IMAP_ADDR=f"127.0.0.1:{imap}",
        CORREIO_POP3_ADDR=f"127.0.0.1:{pop3}", CORREIO_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        CORREIO_METRICS_TOKEN=TOKEN,
    )
    for port in (smtp, imap, pop3, metrics_port):
        wait_port(port, proc)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    assert http_get(url)[0] == 401
    assert http_get(url, {"Authorization": "Bearer wrong"})[0] == 401

    with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as client:
        client.sendmail("a@remote.test", [ADDRESS], make_message(subject="counted"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@remote.test", ["nobody@example.test"], make_message())
    client = imaplib.IMAP4("127.0.0.1", imap, timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        client.login(ADDRESS, "wrong password")
    client.logout()
    client = imaplib.IMAP4("127.0.0.1", imap, timeout=30)
    client.login(ADDRESS, PASSWORD)
    client.select("INBOX")
    status, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"counted" in data[0][1]
    # Scraped while this IMAP session is open: it counts as one.
    status, body = http_get(url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    during = samples(body)
    client.logout()
    pop = poplib.POP3("127.0.0.1", pop3, timeout=30)
    pop.user(ADDRESS)
    pop.pass_(PASSWORD)
    pop.quit()
    time.sleep(1.2)  # the lag probe wakes every half second

    status, body = http_get(url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    found = samples(body)
    assert value(during, "correio_sessions", listener="imap") == 1
    assert value(found, "correio_sessions", listener="imap") == 0
    assert value(found, "correio_smtp_messages_received_total", listener="mx") == 1
    assert value(found, "correio_smtp_refused_total", reason="UnknownRecipient") == 1
    assert value(found, "correio_deliveries_total", path="intake") == 1
    assert value(found, "correio_logins_total", door="imap", result="ok") == 1
    assert value(found, "correio_logins_total", door="imap", result="AuthFailed") == 1
    assert value(found, "correio_logins_total", door="pop3", result="ok") == 1
    # wait_port's probe connected once to each listener too.
    assert value(found, "correio_connections_total", listener="imap", result="accepted") == 3
    assert value(found, "correio_connections_total", listener="smtp", result="accepted") == 2
    assert value(found, "correio_command_seconds_count", protocol="imap", command="SELECT") == 1
    assert value(found, "correio_command_seconds_count", protocol="smtp", command="DATA") == 1
    assert value(found, "correio_command_seconds_count", protocol="pop3", command="PASS") == 1
    assert total(found, "correio_service_call_seconds_count", service="check_recipient") == 2
    assert value(found, "correio_event_loop_lag_seconds_count") >= 2
    assert value(found, "correio_outbound_queue_recipients", state="queued") == 0
    assert deployment.stop(proc) is not None and proc.returncode == 0


def _login_failure(port: int) -> int:
    """POST a wrong password to the webmail's sign-in form, with its CSRF token."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    page = opener.open(f"http://127.0.0.1:{port}/login/", timeout=20).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "address": ADDRESS,
                                   "password": "not the password"}).encode()
    try:
        opener.open(f"http://127.0.0.1:{port}/login/", data=data, timeout=20)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def test_gunicorn_serves_metrics_of_all_its_workers_to_loopback_only(deployment):
    port = free_port()
    proc = deployment.gunicorn(port)
    wait_port(port, proc)
    for _ in range(6):  # spread over both workers
        assert http_get(f"http://127.0.0.1:{port}/login/")[0] == 200
    assert _login_failure(port) == 403
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    found = samples(body)
    assert value(found, "correio_web_request_seconds_count", route="webmail:login",
                 method="GET", status="2xx") == 7
    assert value(found, "correio_logins_total", door="webmail", result="failed") == 1
    assert value(found, "correio_outbound_queue_recipients", state="deferred") == 0
    # Through a proxy on the same host the peer is loopback too: not enough without a token.
    assert http_get(f"http://127.0.0.1:{port}/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] \
        == 403
    output = deployment.stop(proc)
    assert "Booting worker" in output
    assert not (deployment.var / "metrics").exists() or not any(
        (deployment.var / "metrics").iterdir())


def test_the_worker_serves_the_relay_attempts_of_its_pool_children(deployment):
    metrics_port, closed = free_port(), free_port()
    proc = deployment.worker(CORREIO_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
                             CORREIO_MX_OVERRIDES=f"remote.test=127.0.0.1:{closed}")
    wait_port(metrics_port, proc, timeout=90)
    script = (
        "import sys; from mailcore.services.outbound import queue as outbound;"
        " outbound.enqueue_outbound(sys.stdin.buffer.read(), 'demo@example.test',"
        " ['someone@remote.test'])"
    )
    deployment.manage("shell", "-c", script, input=make_message(to="someone@remote.test"))
    deadline = time.monotonic() + 90
    while True:
        status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        found = samples(body)
        if value(found, "correio_relay_attempts_total", result="deferred") >= 1:
            break
        assert time.monotonic() < deadline, body.decode()[-2000:]
        time.sleep(0.5)
    assert value(found, "correio_outbound_queue_recipients", state="deferred") == 1
    assert value(found, "correio_outbound_queue_oldest_seconds", state="deferred") > 0
    deployment.stop(proc)


def test_every_metric_is_documented_in_the_readme():
    from tests.ops.procs import ROOT

    readme = (ROOT / "README.md").read_text()
    names = [m._name for m in vars(metrics).values() if hasattr(m, "_name")
             and hasattr(m, "_type")]
    names += ["correio_outbound_queue_recipients", "correio_outbound_queue_oldest_seconds"]
    assert len(names) >= 12
    assert [name for name in names if f"`{name}" not in readme] == []


@pytest.mark.django_db
def test_web_metrics_need_the_bearer_token_once_one_is_set(client, settings):
    settings.CORREIO_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"correio_outbound_queue_recipients" in response.content


@pytest.mark.django_db
def test_web_metrics_without_a_token_refuse_other_addresses(client, settings):
    settings.CORREIO_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
