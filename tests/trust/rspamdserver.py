"""A real rspamd for tests: Debian's package started on loopback ports with a minimal config in
a temporary directory (its own workers, logs and state; DNS through the tests' dnsmasq so no
look-up leaves the machine; Redis, which rspamd's Bayes classifier needs for learning, on a
database number of its own). ``tests/install-deps.sh`` installs rspamd when missing."""

import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CONFIG = """
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}}
logging {{ type = "file"; filename = "$LOGDIR/rspamd.log"; level = "warning"; }}
worker "normal" {{
    bind_socket = "127.0.0.1:{scan_port}";
    count = 1;
    .include "$CONFDIR/worker-normal.inc"
}}
worker "controller" {{
    bind_socket = "127.0.0.1:{controller_port}";
    count = 1;
    .include "$CONFDIR/worker-controller.inc"
}}
"""

OPTIONS = """dns {{ nameserver = ["{dns}"]; timeout = 1s; retransmits = 1; }}
# Compiling the Hyperscan databases, and the URL matcher for the 9,600 public suffixes, takes
# minutes on a fresh state directory: no Hyperscan, and a short suffix list.
disable_hyperscan = true;
url_tld = "{tlds}";
# The GTUBE-like patterns that force each action (YJS add header, ZJS rewrite subject...).
enable_test_patterns = true;
"""

# Rules of the tests' own: a submission by the user "compromised@example.test" (rspamd's
# ``User`` field, so only when the client names it) is rejected; a subject with "defer-me"
# is soft-rejected (no GTUBE pattern forces that action).
MULTIMAP = """COMPROMISED_USER {{ type = "user"; map = "{dir}/compromised.map"; score = 0.1; }}
DEFER_SUBJECT {{ type = "header"; header = "Subject"; regexp = true;
                 map = "{dir}/defer.map"; score = 0.1; }}
"""
FORCE_ACTIONS = """rules {
    COMPROMISED { action = "reject"; expression = "COMPROMISED_USER";
                  message = "account sends spam"; }
    DEFER { action = "soft reject"; expression = "DEFER_SUBJECT"; message = "deferred"; }
}
"""

REDIS = """servers = "{host}:{port}";
db = "{db}";
"""


def free_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RspamdServer:
    def __init__(self, dns: str, redis: tuple[str, int, int] = ("127.0.0.1", 6379, 6)):
        self.dir = Path(tempfile.mkdtemp(prefix="correio-rspamd-"))
        self.scan_port, self.controller_port = free_tcp_port(), free_tcp_port()
        local = self.dir / "local.d"
        local.mkdir()
        host, port, db = redis
        (local / "redis.conf").write_text(REDIS.format(host=host, port=port, db=db))
        # Network-bound modules that would only wait on look-ups that cannot succeed here.
        for module in ("fuzzy_check", "rbl", "surbl", "phishing", "url_redirector",
                       "asn", "emails", "dkim_signing", "arc", "neural", "replies",
                       "ratelimit", "history_redis", "greylist"):
            (local / f"{module}.conf").write_text("enabled = false;\n")
        (self.dir / "compromised.map").write_text("compromised@example.test\n")
        (self.dir / "defer.map").write_text("/defer-me/\n")
        (local / "multimap.conf").write_text(MULTIMAP.format(dir=self.dir))
        (local / "force_actions.conf").write_text(FORCE_ACTIONS)
        override = self.dir / "override.d"
        override.mkdir()
        tlds = self.dir / "tlds.dat"
        tlds.write_text("com\nnet\norg\ntest\nexample\n")
        (override / "options.inc").write_text(OPTIONS.format(dns=dns, tlds=tlds))
        config = self.dir / "rspamd.conf"
        config.write_text(CONFIG.format(scan_port=self.scan_port,
                                        controller_port=self.controller_port))
        binary = shutil.which("rspamd") or "/usr/bin/rspamd"
        self.process = subprocess.Popen(
            [binary, "-f", "-i", "-u", "root", "-g", "root", "-c", str(config),
             f"--var=LOCAL_CONFDIR={self.dir}", f"--var=DBDIR={self.dir}",
             f"--var=RUNDIR={self.dir}", f"--var=LOGDIR={self.dir}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.scan_port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.dir / "rspamd.log")
                raise RuntimeError("rspamd exited: " + self.process.stderr.read().decode()
                                   + (log.read_text()[-3000:] if log.exists() else ""))
            try:
                for url in (self.url, self.controller_url):
                    with urllib.request.urlopen(url + "/ping", timeout=1) as reply:
                        assert reply.read().strip() == b"pong"
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("rspamd did not answer")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
