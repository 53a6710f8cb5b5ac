"""manage.py makecert: a self-signed certificate for the TLS ports, unless one exists."""

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.management.base import BaseCommand

from mailcore.private import write_private


class Command(BaseCommand):
    help = "Create a self-signed TLS certificate at CORREIO_TLS_CERT / CORREIO_TLS_KEY."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="replace an existing one")

    def handle(self, *args, force, **options):
        cert_path = Path(settings.CORREIO_TLS_CERT)
        key_path = Path(settings.CORREIO_TLS_KEY)
        if cert_path.exists() and key_path.exists() and not force:
            self.stdout.write(f"Certificate exists: {cert_path}")
            return
        hostname = settings.CORREIO_HOSTNAME
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
        now = datetime.datetime.now(datetime.UTC)
        sans = [x509.DNSName(hostname), x509.DNSName("localhost")]
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256())
        )
        # The key is 0600 from its first byte (no write-then-chmod window); the certificate is
        # public but lives in the same private folder.
        write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        self.stdout.write(self.style.SUCCESS(f"Wrote {cert_path} and {key_path}"))
