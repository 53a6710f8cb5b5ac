"""Roundcube's managesieve plugin talks through PEAR's Net_Sieve: the same calls, made by PHP
(Debian's php-cli and php-net-sieve, tests/install-deps.sh), against our listener."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mailcore.models import SieveScript
from mailcore.services import filters
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = Path(__file__).with_name("net_sieve_client.php")


def net_sieve(port: int, user: str, password: str, *, starttls: bool, ca: str) -> dict:
    if shutil.which("php") is None or not Path("/usr/share/php/Net/Sieve.php").exists():
        pytest.fail("php-cli and php-net-sieve are missing: run tests/install-deps.sh")
    done = subprocess.run(["php", str(CLIENT), str(port), user, password,
                           "1" if starttls else "0", ca],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("starttls", [False, True], ids=["plaintext", "starttls"])
def test_roundcube_net_sieve_session(start_managesieve, make_mailbox, sieve_tls, starttls):
    mailbox = make_mailbox("demo@example.test")
    port = start_managesieve().port
    result = net_sieve(port, "demo@example.test", PASSWORD, starttls=starttls,
                       ca=str(sieve_tls[2]))
    assert result["tls"] is starttls
    assert {"fileinto", "vacation", "imap4flags"} <= set(result["extensions"])
    assert sorted(result["list"]) == ["roundcube", "spare"]
    assert result["active"] == "roundcube"
    assert result["same"], result["got"]
    assert "line 2" in result["bad"]
    # The active script cannot be removed (RFC 5804 §2.10): Net_Sieve reports the refusal.
    assert result["remove_active"] != "removed"
    scripts = filters.list_scripts(mailbox)
    assert [(s.name, s.active) for s in scripts] == [("roundcube", True)]
    assert SieveScript.objects.get(mailbox=mailbox, active=True).content.startswith(
        'require ["fileinto"];')


def test_net_sieve_wrong_password_is_refused(start_managesieve, make_mailbox, sieve_tls):
    make_mailbox("demo@example.test")
    port = start_managesieve().port
    done = subprocess.run(["php", str(CLIENT), str(port), "demo@example.test", "wrong", "0",
                           str(sieve_tls[2])], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("login:")
    assert not SieveScript.objects.exists()
