"""manage.py setupdemo: what `make run` needs on a fresh machine — the domain example.test, the
mailbox demo@example.test, an admin superuser and a self-signed certificate for the TLS ports.

Passwords are generated once, kept in ``var/demo-credentials`` (mode 0600) and printed on every
run, so a second `make run` shows the same ones."""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from mailcore.models import Domain, Mailbox
from mailcore.private import write_private
from mailcore.services import accounts

DEMO_DOMAIN = "example.test"
DEMO_ADDRESS = "demo@example.test"
ADMIN_USER = "admin"


class Command(BaseCommand):
    help = "Create the demo domain, mailbox, admin user and TLS certificate (idempotent)."

    def handle(self, *args, **options):
        path = settings.VAR_DIR / "demo-credentials"
        try:
            creds = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            creds = {}
        creds.setdefault("demo", secrets.token_urlsafe(12))
        creds.setdefault("admin", secrets.token_urlsafe(12))
        write_private(path, json.dumps(creds).encode())

        if not Domain.objects.filter(name=DEMO_DOMAIN).exists():
            accounts.create_domain(DEMO_DOMAIN)
        mailbox = Mailbox.objects.filter(address=DEMO_ADDRESS).first()
        if mailbox is None:
            accounts.create_mailbox(DEMO_ADDRESS, creds["demo"], display_name="Demo User")
        else:
            accounts.set_password(mailbox, creds["demo"])
        user_model = get_user_model()
        admin = user_model.objects.filter(username=ADMIN_USER).first()
        if admin is None:
            user_model.objects.create_superuser(ADMIN_USER, "admin@example.test", creds["admin"])
        else:
            admin.set_password(creds["admin"])
            admin.save(update_fields=["password"])
        call_command("makecert", verbosity=0)

        self.stdout.write(self.style.SUCCESS("Correio is set up:"))
        self.stdout.write(f"  mailbox  {DEMO_ADDRESS}  password {creds['demo']}")
        self.stdout.write(f"  admin    {ADMIN_USER}  password {creds['admin']}")
        self.stdout.write(f"  (kept in {path})")
