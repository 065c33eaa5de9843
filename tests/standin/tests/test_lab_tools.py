"""Lab fidelity: asterisk -rx, wazo-service, wazo-upgrade, apt versions, call logs, files."""
import re
import time

import pytest
import yaml

from conftest import ROOT, wait_for

pytestmark = pytest.mark.lab

VERSIONS = yaml.safe_load((ROOT / "tests/lab/group_vars/all/standin.yml").read_text())["wazo_standin_versions"]
OLD, NEW = VERSIONS[0], VERSIONS[-1]
POLICY = "LANG=C apt-cache policy wazo-platform"


def versions(lab, host):
    out = lab.run(host, POLICY, check=True).stdout
    installed = re.search(r"Installed: (\S+)", out).group(1)
    candidate = re.search(r"Candidate: (\S+)", out).group(1)
    return installed, candidate


def back_to_old_version(lab, host):
    lab.run(host, f"rm -f /etc/wazo-standin/fail-next-upgrade; DEBIAN_FRONTEND=noninteractive apt-get install -q -y "
                  f"--allow-downgrades wazo-platform={OLD} wazo-upgrade={OLD} >/dev/null; wazo-service enable "
                  f">/dev/null; wazo-service start >/dev/null", check=True)


@pytest.fixture()
def fresh_secondary(lab):
    host = "secondary"
    back_to_old_version(lab, host)
    lab.run(host, "echo 1 > /etc/wazo-standin/upgrade-seconds", check=True)
    yield host
    back_to_old_version(lab, host)
    lab.run(host, "echo 3 > /etc/wazo-standin/upgrade-seconds", check=True)


def test_cli_is_the_real_asterisk(lab):
    """`asterisk -rx` on a stack is Asterisk 22's own CLI, talking to the daemon of asterisk.service."""
    host = "primary"
    version = lab.run(host, "asterisk -rx 'core show version'", check=True).stdout
    assert re.match(r"Asterisk 22\.\d+", version), version
    out = lab.run(host, "asterisk -rx 'module reload res_pjsip_publish_asterisk.so'", check=True).stdout
    assert "Module 'res_pjsip_publish_asterisk.so' reloaded successfully." in out, out
    assert "Dialplan reloaded." in lab.run(host, "asterisk -rx 'dialplan reload'", check=True).stdout
    lab.run(host, "asterisk -rx 'core reload'; asterisk -rx 'pjsip reload'", check=True)
    bogus = lab.run(host, "asterisk -rx 'bogus command'")
    assert bogus.returncode == 0 and "No such command 'bogus command'" in bogus.stdout, bogus
    modules = lab.run(host, "asterisk -rx 'module show like odbc'", check=True).stdout
    for module in ("res_odbc.so", "cel_odbc.so"):
        assert re.search(rf"^{re.escape(module)}\s.*\sRunning\s", modules, re.M), modules
    odbc = lab.run(host, "asterisk -rx 'odbc show asterisk'", check=True).stdout
    assert "Name:   asterisk" in odbc and "Number of active connections: 1" in odbc, odbc
    endpoints = lab.run(host, "asterisk -rx 'pjsip show endpoints'", check=True).stdout
    assert re.search(r"^ Endpoint:  anonymous\s", endpoints, re.M), endpoints
    hints = lab.run(host, "asterisk -rx 'core show hints'", check=True).stdout
    assert re.search(r"^\s*1001@default\s*: Custom:1001\s", hints, re.M), hints
    assert "MWI:1001@default" in hints
    vm = lab.run(host, "asterisk -rx 'voicemail show users for default'", check=True).stdout
    assert re.search(r"^default\s+1001\s.*\s2$", vm, re.M) and re.search(r"^default\s+1002\s.*\s1$", vm, re.M), vm
    # the daemon: the sid root's binary, as the asterisk user (uid 1100 on both sides)
    ps = lab.run(host, "ps -o user=,uid=,args= -C asterisk", check=True).stdout.split()
    assert ps[:3] == ["asterisk", "1100", "/usr/sbin/asterisk"], ps
    unit = lab.run(host, "systemctl show -p RootDirectory -p Type -p MainPID asterisk", check=True).stdout
    assert "RootDirectory=/opt/asterisk-root" in unit and "Type=notify" in unit, unit
    assert lab.run(host, "pgrep -x asterisk", check=True).stdout.split() == [re.search(r"MainPID=(\d+)", unit)[1]]


def test_wazo_service_status_codes(lab):
    host = "primary"
    out = lab.run(host, "wazo-service status")
    assert out.returncode == 0, out.stdout
    assert out.stdout.startswith("Checking services...\n")
    assert "\trunning\t\tasterisk" in out.stdout
    lab.run(host, "systemctl kill -s KILL wazo-dird.service", check=True)
    try:
        assert wait_for(lambda: lab.run(host, "systemctl is-failed wazo-dird.service").returncode == 0, timeout=10)
        out = lab.run(host, "wazo-service status")
        assert out.returncode == 2, out.stdout
        assert "\tfailed\t\twazo-dird" in out.stdout
        lab.run(host, "systemctl stop wazo-agid.service", check=True)
        assert lab.run(host, "wazo-service status").returncode == 1  # stopped wins over failed
    finally:
        lab.run(host, "systemctl reset-failed wazo-dird.service; wazo-service start", check=True)
    assert lab.run(host, "wazo-service status").returncode == 0


def test_wazo_service_disable_keeps_wazo_services_down(lab):
    host = "secondary"
    try:
        lab.run(host, "wazo-service stop && wazo-service disable", check=True)
        assert lab.run(host, "test -f /var/lib/wazo/disabled").returncode == 0
        out = lab.run(host, "wazo-service start", check=True).stdout
        assert "\tasterisk is disabled" in out and "Wazo fully booted" in out
        assert lab.run(host, "systemctl is-active asterisk").stdout.strip() != "active"
        assert lab.run(host, "systemctl is-active wazo-confd").stdout.strip() == "active"
    finally:
        lab.run(host, "wazo-service enable && wazo-service start", check=True)
    assert lab.run(host, "systemctl is-active asterisk").stdout.strip() == "active"


def test_unit_restarts_are_recorded(lab):
    host = "secondary"
    lab.run(host, "systemctl restart wazo-agid wazo-agentd && wazo-confgen asterisk/pjsip.conf --invalidate && "
                  "wazo-agentd-cli -c 'relog all'", check=True)
    units = lab.run(host, "tail -n 20 /var/log/wazo-standin/units.log", check=True).stdout
    assert "start wazo-agid.service" in units and "start wazo-agentd.service" in units
    cmds = lab.run(host, "tail -n 2 /var/log/wazo-standin/commands.log", check=True).stdout
    assert "wazo-confgen asterisk/pjsip.conf --invalidate" in cmds and "wazo-agentd-cli -c relog all" in cmds


def test_upgrade_changes_the_version_and_restarts(lab, fresh_secondary):
    host = fresh_secondary
    assert versions(lab, host) == (OLD, NEW)
    policy = lab.run(host, POLICY, check=True).stdout
    assert policy.startswith("wazo-platform:\n  Installed: ")
    assert "http://127.0.0.1:8790 ./ Packages" in policy and "/var/lib/dpkg/status" in policy
    out = lab.run(host, "wazo-upgrade -f", timeout=300)
    assert out.returncode == 0
    assert "ERROR" not in out.stdout, out.stdout
    for line in ("Closing port 5060.", "Upgrading wazo...", "Opening port 5060.", "Wazo fully booted",
                 f"installed version : {OLD}", f"proposed update\t: {NEW}"):
        assert line in out.stdout, (line, out.stdout)
    assert versions(lab, host) == (NEW, NEW)
    assert lab.run(host, "cat /usr/share/wazo/WAZO-VERSION").stdout.strip() == NEW
    db = lab.run(host, "su postgres -c \"psql -At -d asterisk -c 'SELECT wazo_version FROM infos'\"").stdout
    assert db.strip() == NEW
    log = lab.run(host, "cat /var/log/wazo-upgrade.log", check=True).stdout
    assert re.search(r"=+\nwazo-upgrade started at \d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\n=+", log)
    assert log.rstrip().splitlines()[-2].startswith("wazo-upgrade stopped at ")
    assert lab.run(host, "wazo-service status").returncode == 0
    assert lab.run(host, "test -f /var/lib/wazo/disabled").returncode == 1
    assert lab.run(host, "iptables -n --list INPUT | grep -c 'dpt:5060'").stdout.strip() == "0"


def test_failed_upgrade_exits_0_with_the_markers(lab, fresh_secondary):
    host = fresh_secondary
    lab.run(host, "echo 'message: disk full (injected)' > /etc/wazo-standin/fail-next-upgrade", check=True)
    lab.run(host, ": > /var/log/wazo-upgrade.log", check=True)
    out = lab.run(host, "wazo-upgrade -f", timeout=300)
    assert out.returncode == 0, "the wrapper must exit 0 even on failure"
    log = lab.run(host, "cat /var/log/wazo-upgrade.log", check=True).stdout
    for text in (out.stdout, log):
        assert "******************* ERROR *************************" in text
        assert "An error occurred during the upgrade." in text
        assert "Error: disk full (injected)" in text
    assert lab.run(host, "test -e /etc/wazo-standin/fail-next-upgrade").returncode == 1, "flag not consumed"
    assert versions(lab, host) == (OLD, NEW)
    assert lab.run(host, "wazo-service status").returncode == 0, "services not restarted after the failure"
    assert lab.run(host, "iptables -n --list INPUT | grep -c 'dpt:5060'").stdout.strip() == "0"
    # the real exit code is visible when real-wazo-upgrade is called directly
    lab.run(host, "touch /etc/wazo-standin/fail-next-upgrade", check=True)
    assert lab.run(host, "real-wazo-upgrade -f", timeout=300).returncode == 255


def test_upgrade_that_needs_a_reboot(lab, fresh_secondary):
    """As on Debian: the kernel's postinst hook touches /var/run/reboot-required and lists the package in
    reboot-required.pkgs; wazo-upgrade itself says nothing about a reboot."""
    host = fresh_secondary
    lab.run(host, "rm -f /var/run/reboot-required /var/run/reboot-required.pkgs; "
                  "echo linux-image-6.1.0-99-amd64 > /etc/wazo-standin/reboot-required-next-upgrade", check=True)
    try:
        out = lab.run(host, "wazo-upgrade -f", timeout=300)
        assert out.returncode == 0 and "ERROR" not in out.stdout, out.stdout
        assert "reboot" not in out.stdout.lower() and "restart the machine" not in out.stdout.lower()
        assert versions(lab, host) == (NEW, NEW)
        assert lab.run(host, "test -f /var/run/reboot-required").returncode == 0
        assert lab.run(host, "cat /var/run/reboot-required.pkgs").stdout == "linux-image-6.1.0-99-amd64\n"
        assert lab.run(host, "test -e /etc/wazo-standin/reboot-required-next-upgrade").returncode == 1, "not consumed"
    finally:
        lab.run(host, "rm -f /var/run/reboot-required /var/run/reboot-required.pkgs "
                      "/etc/wazo-standin/reboot-required-next-upgrade")


def test_pre_stop_failure_never_stops_services(lab, fresh_secondary):
    host = fresh_secondary
    lab.run(host, "echo pre-stop > /etc/wazo-standin/fail-next-upgrade", check=True)
    out = lab.run(host, "wazo-upgrade -f", timeout=300)
    assert out.returncode == 0 and "Error: Failed to execute" in out.stdout
    assert "Closing port 5060." not in out.stdout
    assert versions(lab, host) == (OLD, NEW)


def test_real_wazo_upgrade_options(lab):
    host = "primary"
    out = lab.run(host, "real-wazo-upgrade -x")
    assert out.returncode == 255
    assert "option x is not valid" in out.stderr and "usage: wazo-upgrade [-d] [-f] [-h]" in out.stdout
    out = lab.run(host, "real-wazo-upgrade -h")
    assert out.returncode == 0 and "-d: only download packages" in out.stdout


def test_download_only_keeps_the_version(lab, fresh_secondary):
    host = fresh_secondary
    deb = f"/var/cache/apt/archives/wazo-platform_{NEW}_all.deb"
    lab.run(host, "apt-get clean", check=True)
    out = lab.run(host, "wazo-upgrade -d", timeout=300)
    assert out.returncode == 0
    assert versions(lab, host) == (OLD, NEW)
    # the mirror is HTTP, as on a real stack: the package is really fetched into apt's cache, services untouched
    assert re.search(r"Need to get [1-9][0-9.,]* [kM]B of archives", out.stdout), out.stdout
    assert "Download complete and in download only mode" in out.stdout, out.stdout
    assert lab.run(host, f"test -s {deb}").returncode == 0
    assert lab.run(host, "wazo-service status").returncode == 0
    # a second -d has nothing left to fetch
    again = lab.run(host, "wazo-upgrade -d", timeout=300).stdout
    assert "Need to get 0 B/" in again, again


def test_wazo_call_logs(lab):
    host = "primary"
    out = lab.run(host, "env -u XIVO_UUID wazo-call-logs")
    assert out.returncode == 1
    assert "UUIDNotFound" in out.stderr and "XIVO_UUID environment variable is not set" in out.stderr
    linkedid = f"lab-test-{time.time()}"
    lab.run(host, "su postgres -c \"psql -q -d asterisk -c \\\"INSERT INTO cel (eventtype, eventtime, linkedid) "
                  f"VALUES ('CHAN_START', now(), '{linkedid}'), ('HANGUP', now(), '{linkedid}')\\\"\"", check=True)
    out = lab.run(host, ". /etc/profile.d/xivo_uuid.sh && wazo-call-logs")
    assert out.returncode == 0, out.stderr
    left = lab.run(host, "su postgres -c \"psql -At -d asterisk -c 'SELECT count(*) FROM cel WHERE call_log_id IS NULL'\"")
    assert left.stdout.strip() == "0"
    made = lab.run(host, "su postgres -c \"psql -At -d asterisk -c \\\""
                         f"SELECT count(*) FROM call_log WHERE linkedid = '{linkedid}'\\\"\"")
    assert made.stdout.strip() == "1"


def test_uuid_per_stack_and_files(lab):
    uuids = {h: lab.run(h, ". /etc/profile.d/xivo_uuid.sh && echo $XIVO_UUID", check=True).stdout.strip()
             for h in ("primary", "secondary")}
    assert all(re.fullmatch(r"[0-9a-f-]{36}", u) for u in uuids.values())
    assert uuids["primary"] != uuids["secondary"]
    host = "primary"
    owners = lab.run(host, "stat -c '%U %n' /var/spool/asterisk/voicemail/default/1001/INBOX/msg0000.*", check=True)
    assert [line.split()[0] for line in owners.stdout.splitlines()] == ["asterisk", "asterisk"]
    assert lab.run(host, "test -d /etc/asterisk/res_odbc.d -a -d /etc/asterisk/cel_odbc.d -a -d /etc/asterisk/pjsip.d"
                   ).returncode == 0
    cols = lab.run(host, "su postgres -c \"psql -At -d asterisk -c \\\"SELECT string_agg(column_name, ',' ORDER BY "
                         "ordinal_position) FROM information_schema.columns WHERE table_name = 'cel'\\\"\"").stdout
    assert cols.strip() == ("id,eventtype,eventtime,userdeftype,cid_name,cid_num,cid_ani,cid_rdnis,cid_dnid,exten,"
                            "context,channame,appname,appdata,amaflags,accountcode,peeraccount,uniqueid,linkedid,"
                            "userfield,peer,extra,call_log_id")
    enc = lab.run(host, "su postgres -c \"psql -At -c \\\"SELECT pg_encoding_to_char(encoding) FROM pg_database "
                        "WHERE datname = 'asterisk'\\\"\"").stdout.strip()
    assert enc == "UTF8"
