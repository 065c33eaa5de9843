"""Fixtures for the Wazo stand-in's own tests.

Two kinds of tests live here:
- loopback tests (test_loopback_*.py): run the stand-in programs on this machine (the HA logic on temporary
  files, the SIPp scenarios against each other on 127.0.0.1); no lab needed.
- lab tests (test_lab_*.py): run against a lab's primary/secondary (`make lab-up`): the real Asterisk 22 and the
  stand-in installed there. The inventory is $LAB_INVENTORY (default .lab/inventory.yml); they are skipped with the
  reason when no lab is reachable.
"""
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
STANDIN = ROOT / "tests" / "standin"
FILES = STANDIN / "files"
SIPP_DIR = STANDIN / "sipp"


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs a lab with the stand-in (LAB_INVENTORY), skipped otherwise")


class Lab:
    """SSH access to the lab's hosts, as the inventory describes them."""

    def __init__(self, inventory_path):
        self.inventory_path = Path(inventory_path)
        inv = yaml.safe_load(self.inventory_path.read_text())
        self.vars = inv["all"].get("vars", {})
        self.hosts = {}
        for group in inv["all"]["children"].values():
            for name, hvars in (group.get("hosts") or {}).items():
                if hvars and "ansible_host" in hvars:
                    self.hosts[name] = hvars["ansible_host"]
        self.key = self.vars["ansible_ssh_private_key_file"]
        self.ssh_common = shlex.split(self.vars.get("ansible_ssh_common_args", ""))

    def ip(self, host):
        return self.hosts[host]

    def run(self, host, command, check=False, timeout=120, input=None):
        """Run a shell command as root on a lab host; returns CompletedProcess (text)."""
        args = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-i", self.key, *self.ssh_common,
                f"root@{self.ip(host)}", command]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: {command!r} -> rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def local_ip_towards(self, host):
        """The host-side address the lab host sees us from (for SIPp -i)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((self.ip(host), 5060))
            return probe.getsockname()[0]
        finally:
            probe.close()


@pytest.fixture(scope="session")
def lab():
    path = Path(os.environ.get("LAB_INVENTORY", ROOT / ".lab" / "inventory.yml"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        pytest.skip(f"no lab: {path} does not exist (run `make lab-up`, or set LAB_INVENTORY)")
    lab = Lab(path)
    for host in ("primary", "secondary"):
        if host not in lab.hosts:
            pytest.skip(f"no lab: inventory {path} has no host {host}")
        try:
            proc = lab.run(host, "test -x /opt/asterisk-root/usr/sbin/asterisk -a -x /usr/bin/wazo-service "
                                 "-a -f /etc/systemd/system/asterisk.service", timeout=20)
        except subprocess.TimeoutExpired:
            pytest.skip(f"no lab: {host} ({lab.ip(host)}) does not answer over SSH")
        if proc.returncode == 255:
            pytest.skip(f"no lab: cannot ssh to {host} ({lab.ip(host)}): {proc.stderr.strip()}")
        if proc.returncode != 0:
            pytest.skip(f"lab {path} is up but Asterisk and the stand-in are not installed on {host} "
                        "(run `make lab-up`, or `make standin`)")
    return lab


def channels(lab, host):
    """Parse `asterisk -rx 'core show channels count'` on a lab host -> (channels, calls, processed) or None."""
    out = lab.run(host, "asterisk -rx 'core show channels count'")
    return parse_counts(out.stdout) if out.returncode == 0 else None


def parse_counts(text):
    import re

    ch = re.search(r"^(\d+) active channels?$", text, re.M)
    ca = re.search(r"^(\d+) (?:of \d+ max )?active calls?", text, re.M)
    pr = re.search(r"^(\d+) calls? processed", text, re.M)
    return int(ch.group(1)), int(ca.group(1)), int(pr.group(1))


def wait_for(predicate, timeout=10.0, interval=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
