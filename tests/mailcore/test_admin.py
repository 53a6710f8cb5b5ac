"""The Django admin renders every page and creates mailboxes through the service layer."""

import pytest
from django.contrib.auth import get_user_model

from mailcore.models import Alias, Folder, Mailbox
from mailcore.services import credentials, delivery
from tests.factories import make_message


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw")
    client.force_login(user)
    return client


def test_every_admin_list_and_form_renders(admin_client, mailbox):
    delivery.deliver_message(make_message(subject="Admin sees me"), ["demo@example.test"])
    Alias.objects.create(domain=mailbox.domain, local_part="info", destinations="demo@example.test")
    for model in ("domain", "mailbox", "alias", "folder", "message"):
        response = admin_client.get(f"/admin/mailcore/{model}/")
        assert response.status_code == 200, model
    for model in ("domain", "mailbox", "alias"):
        assert admin_client.get(f"/admin/mailcore/{model}/add/").status_code == 200
    assert admin_client.get(f"/admin/mailcore/mailbox/{mailbox.pk}/change/").status_code == 200
    page = admin_client.get("/admin/mailcore/message/?q=Admin").content.decode()
    assert "Admin sees me" in page
    assert admin_client.get("/admin/mailcore/message/add/").status_code == 403


def test_mailbox_list_shows_usage_against_quota(admin_client, mailbox):
    delivery.deliver_message(make_message(body="x" * 2000), ["demo@example.test"])
    page = admin_client.get("/admin/mailcore/mailbox/").content.decode()
    assert "1.0\xa0GB" in page or "1.0 GB" in page
    assert "%)" in page


def test_a_mailbox_created_in_the_admin_has_its_folders_and_can_log_in(admin_client, domain):
    response = admin_client.post(
        "/admin/mailcore/mailbox/add/",
        {
            "domain": domain.pk,
            "local_part": "NewUser",
            "display_name": "New User",
            "quota": 1000000,
            "active": "on",
            "password": "a-long-fresh-password",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    box = Mailbox.objects.get(address="newuser@example.test")
    assert Folder.objects.filter(mailbox=box).count() == 6
    assert credentials.authenticate("newuser@example.test", "a-long-fresh-password") == box


def test_the_admin_form_requires_a_password_and_rejects_duplicates(admin_client, mailbox):
    data = {"domain": mailbox.domain.pk, "local_part": "demo", "quota": 0, "active": "on"}
    response = admin_client.post("/admin/mailcore/mailbox/add/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "A new mailbox needs a password." in body
    assert "This address already exists." in body


def test_the_admin_resets_a_password(admin_client, mailbox):
    response = admin_client.post(
        f"/admin/mailcore/mailbox/{mailbox.pk}/change/",
        {"display_name": "Demo", "quota": mailbox.quota, "active": "on", "password": "brand-new-secret-1"},
    )
    assert response.status_code == 302
    assert credentials.authenticate("demo@example.test", "brand-new-secret-1") == mailbox


def test_admin_requires_staff(client, mailbox):
    assert client.get("/admin/mailcore/mailbox/").status_code == 302
    client.force_login(mailbox.user)
    assert client.get("/admin/mailcore/mailbox/").status_code == 302
