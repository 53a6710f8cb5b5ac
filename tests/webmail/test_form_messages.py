"""Issue 16's low items about what a form says: errors in words tied to their field (never by
colour alone), the right words for a wrong current password, a search operator with no
value, recipients kept exactly as typed with the bad one named, a compose form too large for
the server to read answered in the form's status line."""

import html
import re

import pytest

from mailcore.models import OutboundMessage
from mailcore.services.search.query import parse_query
from tests.conftest import PASSWORD
from tests.webmail.conftest import HX
from tests.webmail.test_compose import new, send
from webmail.models import Composition


def field_error(page: str, field_id: str) -> str:
    """The message tied to an input by aria-describedby, if the input says it is invalid."""
    tag = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in tag, tag
    described = re.search(r'aria-describedby="([^"]+)"', tag).group(1)
    return html.unescape(re.search(rf'id="{described}"[^>]*>([^<]+)<', page).group(1)).strip()


def test_an_empty_login_says_in_words_what_is_missing(db, client):
    response = client.post("/login/", {"address": "", "password": ""})
    page = response.content.decode()
    assert field_error(page, "id_address") == "Enter your email address."
    assert field_error(page, "id_password") == "Enter your password."
    page = client.post("/login/", {"address": "demo@example.test", "password": ""}).content.decode()
    assert 'aria-invalid="true"' not in re.search(r'<input[^>]*id="id_address"[^>]*>', page).group(0)
    assert field_error(page, "id_password") == "Enter your password."


def test_a_wrong_current_password_in_settings_says_so(web, mailbox):
    response = web.post("/settings/", {"form": "password", "current": "not it",
                                       "new": "a new long passphrase 42", "confirm": "a new long passphrase 42"})
    assert response.status_code == 400
    page = response.content.decode()
    assert field_error(page, "id_current") == "Your current password is wrong."
    assert "Wrong address or password" not in page
    mailbox.user.refresh_from_db()
    assert mailbox.user.check_password(PASSWORD)


@pytest.mark.parametrize("text", ["from:", "from: ", "-from:", 'from:""', "subject:", "is:", "in:"])
def test_an_operator_without_a_value_is_named_and_left_out(text):
    query = parse_query(text)
    assert query.is_empty and len(query.problems) == 1
    assert "needs something right after the colon" in query.problems[0]


def test_an_operator_without_a_value_beside_words_searches_the_words():
    query = parse_query("from: alice")
    assert [t.words for t in query.terms] == [["alice"]] and query.problems


def test_a_search_of_only_from_colon_finds_nothing_and_says_why(web, deliver):
    deliver(subject="Anything at all", sender="Bob <bob@corp.test>")
    page = web.get("/search/", {"q": "from:", "scope": "all"}).content.decode()
    assert "Anything at all" not in page
    assert "“from:” needs something right after the colon, as in from:alice" in page
    assert "Type what to look for" in page
    page = web.get("/search/", {"q": "   ", "scope": "all"}, **HX).content.decode()
    assert "Anything at all" not in page and "Type what to look for" in page
    page = web.get("/search/", {"q": "from: anything", "scope": "all"}).content.decode()
    assert "Anything at all" in page and "needs something right after the colon" in page


def typed_value(page: str, name: str) -> str:
    return html.unescape(re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page).group(1))


@pytest.mark.parametrize("to, named", [
    ('Ann Smith <ann@remote.test>, bob@@remote, "Lee, K" <lee@remote.test>', "'bob@@remote'"),
    ("ann@remote.test, carl", "'carl'"),
    ("a b@remote.test", "'a b@remote.test'"),  # once read as "ab@remote.test"
    ('"Lee, K" <lee@remote>', "'\"Lee, K\" <lee@remote>' has an invalid domain"),
    ("  ann@remote.test ,  zed@", "'zed@'"),
])
def test_a_bad_address_is_named_as_typed_and_the_field_keeps_exactly_what_was_typed(
    web, mailbox, to, named
):
    cid = new(web)
    response = send(web, cid, to=to, cc="  Carol <carol@remote.test>;x@y.test ", subject="s",
                    body="b")
    assert response.status_code == 400
    page = response.content.decode()
    assert typed_value(page, "to") == to
    assert typed_value(page, "cc") == "  Carol <carol@remote.test>;x@y.test "
    assert named in html.unescape(page)
    assert OutboundMessage.objects.count() == 0


def test_a_refused_field_brings_the_form_back_with_everything_typed(web, mailbox):
    cid = new(web)
    response = send(web, cid, to="x" * 20001, subject="Kept subject", body="Kept text\n")
    assert response.status_code == 400
    page = response.content.decode()
    assert typed_value(page, "subject") == "Kept subject" and "Kept text" in page
    assert typed_value(page, "to") == "x" * 20001


def test_a_compose_post_too_large_to_read_answers_in_the_status_line(web, mailbox, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    cid = new(web)
    web.post(f"/compose/{cid}/", {"to": "ann@remote.test", "subject": "Saved before",
                                  "body": "kept", "action": "save"}, **HX)
    huge = "<p>x</p><img src=\"data:image/png;base64," + "A" * (100 * 1024) + '">'
    data = {"to": "ann@remote.test", "subject": "s", "body": "b", "body_html": huge,
            "rich_active": "1", "action": "send"}
    response = web.post(f"/compose/{cid}/", data, **HX)
    assert response.status_code == 413
    assert response["HX-Retarget"] == "#save-status" and response["HX-Reswap"] == "outerHTML"
    page = html.unescape(response.content.decode())
    assert 'id="save-status"' in page and "A picture in the text is too large" in page
    autosave = web.post(f"/compose/{cid}/autosave/", data,
                        HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert autosave.status_code == 413 and "attach it as a file" in autosave.content.decode()
    assert OutboundMessage.objects.count() == 0
    assert Composition.objects.get(pk=cid).subject == "Saved before"
    # Without script (no htmx): the page says it.
    plain = web.post(f"/compose/{cid}/", data)
    assert plain.status_code == 413 and "attach it as a file" in plain.content.decode()
    # Elsewhere the same refusal is the plain 400 page.
    assert web.post("/settings/", {"form": "x", "pad": "y" * 70000}).status_code == 400
