"""Management commands: createdomain, createmailbox, setupdemo, makecert."""

import json

import pytest
from django.core.management import CommandError, call_command

from mailcore.models import Domain, Mailbox
from mailcore.services import credentials


def test_createdomain_and_createmailbox(db, capsys):
    call_command("createdomain", "Corp.Test")
    call_command("createmailbox", "boss@corp.test", "--password", "pw-for-boss", "--display-name", "Boss")
    assert Domain.objects.filter(name="corp.test").exists()
    box = Mailbox.objects.get(address="boss@corp.test")
    assert box.display_name == "Boss"
    assert credentials.authenticate("boss@corp.test", "pw-for-boss") == box
    assert "Created mailbox boss@corp.test" in capsys.readouterr().out


def test_commands_explain_their_errors(db):
    with pytest.raises(CommandError, match="createdomain"):
        call_command("createmailbox", "x@unknown.test", "--password", "pw")
    call_command("createdomain", "corp.test")
    with pytest.raises(CommandError, match="already exists"):
        call_command("createdomain", "corp.test")
    with pytest.raises(CommandError, match="not a fully qualified"):
        call_command("createdomain", "nodots")


def test_createmailbox_without_a_terminal_needs_a_password(db, monkeypatch):
    call_command("createdomain", "corp.test")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="no --password"):
        call_command("createmailbox", "x@corp.test")


def test_setupdemo_is_idempotent_and_prints_the_same_passwords(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.CORREIO_TLS_CERT = str(tmp_path / "tls/cert.pem")
    settings.CORREIO_TLS_KEY = str(tmp_path / "tls/key.pem")
    call_command("setupdemo")
    first = capsys.readouterr().out
    call_command("setupdemo")
    second = capsys.readouterr().out
    creds = json.loads((tmp_path / "demo-credentials").read_text())
    assert creds["demo"] in first and creds["demo"] in second
    assert credentials.authenticate("demo@example.test", creds["demo"])
    assert (tmp_path / "tls/cert.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
