"""The rules page with the Django test client, as a page and as htmx fragments: rules and the
vacation reply become the active Sieve script; the raw editor shows the server's errors."""

import pytest

from mailcore.models import SieveScript
from mailcore.services import filters, folders
from mailcore.sieve.compile import compile_script
from mailcore.sieve.rules import load_rules

HX = {"HTTP_HX_REQUEST": "true"}


def active(mailbox) -> str:
    return SieveScript.objects.get(mailbox=mailbox, active=True).content


def test_the_page_renders_for_the_owner_only(web, client):
    response = web.get("/rules/")
    assert response.status_code == 200 and b"Filters for incoming mail" in response.content
    assert client.get("/rules/").status_code == 302  # not signed in: to the login page


def test_adding_a_move_rule_writes_an_active_script(web, mailbox):
    folders.create_folder(mailbox, "Lists")
    response = web.post("/rules/", {"form": "add", "field": "list", "contains": "dev.example",
                                    "action": "move", "folder": "Lists"})
    assert response.status_code == 302
    script = active(mailbox)
    compile_script(script)
    assert 'if header :contains "list-id" "dev.example" {\n    fileinto "Lists"; stop;' in script
    assert b"Lists" in web.get("/rules/").content


def test_htmx_add_returns_the_panel_and_errors_are_shown(web, mailbox):
    response = web.post("/rules/", {"form": "add", "field": "from", "contains": "boss",
                                    "action": "flag"}, **HX)
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<div id="rules-panel">')
    assert b"Rule added." in response.content and b"boss" in response.content
    response = web.post("/rules/", {"form": "add", "field": "from", "contains": "x",
                                    "action": "forward"}, **HX)
    assert response.status_code == 400 and b"Give the address to forward to." in response.content
    assert load_rules(active(mailbox)).rules[0].action == "flag"


def test_removing_a_rule(web, mailbox):
    web.post("/rules/", {"form": "add", "field": "subject", "contains": "spam",
                         "action": "delete"})
    web.post("/rules/", {"form": "remove", "index": "0"})
    assert load_rules(active(mailbox)).rules == []


def test_vacation_with_dates(web, mailbox):
    response = web.post("/rules/", {"form": "vacation", "enabled": "on", "start": "2026-12-20",
                                    "end": "2026-12-31", "subject": "Away",
                                    "message": "Back in January.", "days": "3"})
    assert response.status_code == 302
    script = active(mailbox)
    assert 'currentdate :value "ge" "date" "2026-12-20"' in script
    assert 'vacation :days 3 :subject "Away" "Back in January.";' in script
    bad = web.post("/rules/", {"form": "vacation", "enabled": "on", "start": "2026-12-20",
                               "end": "2026-12-01", "message": "", "days": "3"}, **HX)
    assert bad.status_code == 400 and b"Write the reply to send." in bad.content


@pytest.mark.parametrize("htmx", [False, True])
def test_raw_editor_shows_syntax_errors_with_their_line(web, mailbox, htmx):
    extra = HX if htmx else {}
    response = web.post("/rules/", {"form": "raw", "script": "keep;\r\nfrobnicate;\r\n"},
                        **extra)
    assert response.status_code == 400
    assert b"Line 2: unknown command" in response.content
    assert not SieveScript.objects.filter(mailbox=mailbox).exists()
    if htmx:
        assert response.content.lstrip().startswith(b'<section id="raw-editor"')
    response = web.post("/rules/", {"form": "raw", "script": 'require "fileinto";\r\n'
                                    'fileinto "Archive";\r\n'}, **extra)
    assert response.status_code == (200 if htmx else 302)
    assert active(mailbox) == 'require "fileinto";\nfileinto "Archive";\n'
    page = web.get("/rules/").content
    assert b"was written by hand" in page


def test_filter_errors_are_visible(web, mailbox):
    filters.record_event(mailbox.pk, "error", "fileinto: no folder 'X'; kept in INBOX")
    assert b"no folder &#x27;X&#x27;; kept in INBOX" in web.get("/rules/").content


def test_another_users_rules_are_not_shown(web, other):
    filters.put_script(other, "secret", 'redirect "spy@elsewhere.test";', activate=True)
    assert b"spy@elsewhere.test" not in web.get("/rules/").content
