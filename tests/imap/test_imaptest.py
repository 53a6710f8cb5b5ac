"""Dovecot's imaptest against the real IMAP listener: its compliance scripts and its stress mode.

imaptest is an independent client that tracks the server's state and checks every reply against
RFC 3501 and the extensions a server announces. It is built from third_party/imaptest by
tests/imaptest/build.sh (installed by `make test`); a missing toolchain fails loudly here, so CI
cannot pass without running it."""

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.imaptest.mbox import stress_mbox

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "third_party" / "imaptest" / "src" / "tests"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="session")
def imaptest_binary():
    built = subprocess.run(
        ["bash", str(ROOT / "tests" / "imaptest" / "build.sh")],
        capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, f"building imaptest failed:\n{built.stderr}"
    return built.stdout.strip().splitlines()[-1]


def run_imaptest(binary: str, port: int, *args: str, timeout: int) -> str:
    done = subprocess.run(
        [binary, "host=127.0.0.1", f"port={port}", f"pass={PASSWORD}", *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return done.stdout + done.stderr


def test_imaptest_compliance_scripts_all_pass(imaptest_binary, make_mailbox, start_imap):
    make_mailbox("testuser@example.test")
    listener = start_imap()
    out = run_imaptest(
        imaptest_binary, listener.port, "user=testuser@example.test", f"test={SCRIPTS}",
        timeout=300,
    )
    summary = re.search(r"(\d+) test groups: (\d+) failed", out)
    assert summary, out[-3000:]
    groups, failed = int(summary[1]), int(summary[2])
    commands = re.findall(r"(base protocol|extensions): (\d+)/(\d+) individual commands failed", out)
    assert groups >= 71
    assert failed == 0 and all(int(bad) == 0 for _, bad, _ in commands), out[-6000:]
    assert "Error:" not in out, out[-6000:]


def test_imaptest_stress_mix_reports_no_protocol_error(imaptest_binary, make_mailbox, start_imap,
                                                       tmp_path):
    # The stress mix of imaptest's README: 10 clients over 100 users for a fixed time, with
    # APPENDs taken from an mbox of varied messages. Bounded in time for CI.
    for i in range(1, 101):
        make_mailbox(f"user{i}@example.test")
    mbox = tmp_path / "stress.mbox"
    mbox.write_bytes(stress_mbox())
    listener = start_imap()
    out = run_imaptest(
        imaptest_binary, listener.port, "user=user%d@example.test", "users=100", "clients=10",
        "secs=20", f"mbox={mbox}", timeout=120,
    )
    assert "Totals:" in out, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("Error:")]
    assert errors == [], "\n".join(errors[:40])


def test_imaptest_binary_scripts_run_and_pass(imaptest_binary, make_mailbox, start_imap):
    # imaptest skips a script whose capabilities the server does not announce: these four need
    # BINARY (RFC 3516), so each must run (none skipped) and pass every command.
    make_mailbox("testuser@example.test")
    listener = start_imap()
    for script in ("append-binary", "fetch-binary-mime", "fetch-binary-mime-base64",
                   "fetch-binary-mime-qp"):
        out = run_imaptest(
            imaptest_binary, listener.port, "user=testuser@example.test",
            f"test={SCRIPTS / script}", timeout=120,
        )
        assert "1 test groups: 0 failed, 0 skipped" in out, out[-3000:]
        commands = re.findall(r"extensions: (\d+)/(\d+) individual commands failed", out)
        assert commands and commands[0][0] == "0" and int(commands[0][1]) > 0, out[-3000:]
