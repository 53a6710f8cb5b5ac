"""The reference servers, run from Debian's packages in a temporary directory for side-by-side
benchmarks: Dovecot (IMAP, Maildir) and Postfix (SMTP with its durable queue).

Neither touches the system's own configuration or services: each gets a private config, base
directory, queue and log under one temporary directory, listens on a loopback port and is stopped
(and the directory removed) when the context ends. The packages are installed when missing
(``dovecot-imapd``, ``postfix``; apt-get as root), with a policy-rc.d that keeps Debian from
starting them as system services."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def ensure_packages(*packages: str) -> None:
    missing = [
        p for p in packages
        if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                          text=True).stdout.strip() != "install ok installed"
    ]
    if not missing:
        return
    cleanup = not os.path.exists("/usr/sbin/policy-rc.d")
    if cleanup:
        Path("/usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        os.chmod("/usr/sbin/policy-rc.d", 0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    finally:
        if cleanup:
            os.unlink("/usr/sbin/policy-rc.d")


DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%n
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_min_avail = 2
}}
service imap {{
  process_limit = 1024
}}
"""


@contextlib.contextmanager
def dovecot(password: str) -> Iterator[int]:
    """Run Dovecot's IMAP server on a loopback port (any user, this password); yields the port."""
    ensure_packages("dovecot-core", "dovecot-imapd")
    root = Path(tempfile.mkdtemp(prefix="correio-ref-dovecot-"))
    os.chmod(root, 0o755)
    (root / "mail").mkdir(mode=0o777)
    os.chmod(root / "mail", 0o777)
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(root=root, port=port, password=password))
    proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = {root}/conf
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = reference.bench.test
mydestination = example.test
mynetworks = 127.0.0.0/8
local_recipient_maps =
local_transport = discard:
default_process_limit = 100
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtpd_banner = $myhostname ESMTP
"""


@contextlib.contextmanager
def postfix() -> Iterator[int]:
    """Run a private Postfix instance accepting mail for example.test on a loopback port.

    Mail is queued durably as Postfix always does (fsync'd queue files) and then discarded by the
    discard transport, so the figure is Postfix's accept rate, which is what Correio's 250 means
    too (stored durably)."""
    ensure_packages("postfix")
    root = Path(tempfile.mkdtemp(prefix="correio-ref-postfix-"))
    os.chmod(root, 0o755)
    conf = root / "conf"
    conf.mkdir()
    port = free_port()
    (conf / "main.cf").write_text(POSTFIX_MAIN.format(root=root))
    master = Path("/etc/postfix/master.cf").read_text().splitlines()
    lines = []
    for line in master:
        if line.startswith("smtp ") and " inet " in line:
            line = f"127.0.0.1:{port}      inet  n       -       n       -       -       smtpd"
        lines.append(line)
    (conf / "master.cf").write_text("\n".join(lines) + "\n")
    for name in ("postfix-files", "dynamicmaps.cf"):
        with contextlib.suppress(FileNotFoundError):
            shutil.copy(f"/etc/postfix/{name}", conf / name)
    for sub in ("postfix-files.d", "dynamicmaps.cf.d"):
        (conf / sub).mkdir(exist_ok=True)
    (root / "queue").mkdir(mode=0o755)
    (root / "data").mkdir(mode=0o700)
    shutil.chown(root / "data", "postfix")
    env = {**os.environ, "MAIL_CONFIG": str(conf)}
    subprocess.run(["postfix", "-c", str(conf), "check"], env=env, capture_output=True)
    started = subprocess.run(["postfix", "-c", str(conf), "start"], env=env,
                             capture_output=True, text=True)
    try:
        if started.returncode != 0:
            raise RuntimeError(f"postfix did not start: {started.stderr}")
        wait_for_port(port)
        yield port
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], env=env, capture_output=True)
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)
