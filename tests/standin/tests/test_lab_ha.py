"""Lab fidelity: HA API side effects, replication, wazo-sync."""
import json

import pytest

pytestmark = pytest.mark.lab

TOKEN = "lab-token"  # the stand-in's confd accepts any non-empty X-Auth-Token


def curl(lab, host, method, path, body=None, token=TOKEN, port=9486):
    data = f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'" if body is not None else ""
    auth = f"-H 'X-Auth-Token: {token}'" if token else ""
    out = lab.run(host, f"curl -s -o /tmp/curl.out -w '%{{http_code}}' -X {method} {auth} {data} "
                        f"http://localhost:{port}{path}; echo; cat /tmp/curl.out", check=True).stdout
    code, dummy, rest = out.partition("\n")
    return int(code), rest


def pg_lines(lab, host):
    hba = lab.run(host, "grep -E '^host asterisk postgres' /etc/postgresql/15/main/pg_hba.conf").stdout
    listen = lab.run(host, "grep -E '^listen_addresses' /etc/postgresql/15/main/postgresql.conf").stdout
    return hba.strip(), listen.strip()


# After the reset: a xivo-check-master-status that cron started while the secondary was a slave still runs (it
# pings the master for 20 s, then stops the slave's Wazo services, Asterisk included, as on a real slave). Wait
# for it, then give the secondary its services back, so the next tests find the stack as the lab made it.
SLAVE_CHECK_SETTLE = (
    "for i in $(seq 60); do pgrep -f '[x]ivo-check-master-status' > /dev/null || break; sleep 1; done; "
    "wazo-service status all > /dev/null 2>&1 || { wazo-service enable && wazo-service start; }"
)


@pytest.fixture()
def ha_reset(lab):
    yield
    for host in ("primary", "secondary"):
        curl(lab, host, "PUT", "/1.1/ha", {"node_type": "disabled", "remote_address": ""})
    lab.run("secondary", SLAVE_CHECK_SETTLE, timeout=120)


def test_confd_validation(lab):
    host = "primary"
    assert curl(lab, host, "GET", "/1.1/ha", token="")[0] == 401
    for body in ({"node_type": "master", "remote_address": "secondary.lab"},
                 {"node_type": "master", "remote_address": ""},
                 {"node_type": "master"},
                 {"node_type": "primary", "remote_address": "10.0.0.1"}):
        code, text = curl(lab, host, "PUT", "/1.1/ha", body)
        assert code == 400, (body, code, text)
    code, text = curl(lab, host, "GET", "/1.1/ha")
    assert code == 200 and json.loads(text)["node_type"] == "disabled"


def test_master_and_slave_side_effects(lab, ha_reset):
    p, s = lab.ip("primary"), lab.ip("secondary")
    restarts_before = lab.run("primary", "grep -c 'start postgresql' /var/log/wazo-standin/api.log || true").stdout
    code = curl(lab, "primary", "PUT", "/1.1/ha", {"node_type": "master", "remote_address": s})[0]
    assert code == 204
    assert json.loads(lab.run("primary", "cat /etc/xivo/ha.conf", check=True).stdout) == \
        {"node_type": "master", "remote_address": s}
    assert lab.run("primary", "cat /etc/cron.d/xivo-ha-master", check=True).stdout == (
        f"0 * * * * root /usr/sbin/xivo-master-slave-db-replication {s} >/dev/null\n"
        "0 * * * * root /usr/bin/wazo-sync >/dev/null\n")
    assert lab.run("primary", "test -f /var/lib/wazo/is-primary -a ! -e /var/lib/wazo/is-secondary").returncode == 0
    assert pg_lines(lab, "primary") == ("", "")
    assert "exec /bin/systemctl restart postgresql.service" in lab.run("primary", "cat /var/log/wazo-standin/api.log").stdout
    assert restarts_before is not None
    code, text = curl(lab, "primary", "GET", "/1.1/ha")
    assert code == 200 and json.loads(text) == {"node_type": "master", "remote_address": s}
    code, text = curl(lab, "primary", "GET", "/get_ha_config", port=8668, token="")
    assert code == 200 and json.loads(text)["node_type"] == "master"

    code = curl(lab, "secondary", "PUT", "/1.1/ha", {"node_type": "slave", "remote_address": p})[0]
    assert code == 204
    assert lab.run("secondary", "cat /etc/cron.d/xivo-ha-slave", check=True).stdout == \
        f"* * * * * root /usr/sbin/xivo-check-master-status {p} >/dev/null\n"
    assert lab.run("secondary", "test ! -e /etc/cron.d/xivo-ha-master -a -f /var/lib/wazo/is-secondary").returncode == 0
    assert pg_lines(lab, "secondary") == (f"host asterisk postgres {p}/32 trust", "listen_addresses = '*'")

    # re-applying "disabled" strips the lines again (the drift the collection must re-assert)
    code = curl(lab, "secondary", "PUT", "/1.1/ha", {"node_type": "disabled", "remote_address": ""})[0]
    assert code == 204
    assert pg_lines(lab, "secondary") == ("", "")
    assert lab.run("secondary", "ls /etc/cron.d/xivo-ha-* /var/lib/wazo/is-*").returncode != 0


def test_replication_needs_the_slave_pg_access(lab, ha_reset):
    p, s = lab.ip("primary"), lab.ip("secondary")
    # fresh secondary: PostgreSQL listens on localhost only -> refused
    out = lab.run("primary", f"/usr/sbin/xivo-master-slave-db-replication {s}", timeout=120)
    assert out.returncode == 1
    assert out.stdout.startswith("Slave replication failed: "), out.stdout
    # the secondary opened (here by its HA API as slave) -> a real dump/restore
    assert curl(lab, "secondary", "PUT", "/1.1/ha", {"node_type": "slave", "remote_address": p})[0] == 204
    lab.run("secondary", "su postgres -c \"psql -q -d asterisk -c \\\"UPDATE userfeatures SET firstname = 'stale'\\\"\"",
            check=True)
    lab.run("primary", "su postgres -c \"psql -q -d asterisk -c \\\"UPDATE userfeatures SET lastname = 'Primary' "
                       "WHERE firstname = 'Alice'\\\"\"", check=True)
    out = lab.run("primary", f"/usr/sbin/xivo-master-slave-db-replication {s}", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "Slave replication completed succesfully"
    q = "su postgres -c \"psql -At -d asterisk -c 'SELECT firstname, lastname FROM userfeatures ORDER BY id'\""
    assert lab.run("secondary", q).stdout == lab.run("primary", q).stdout
    assert "stale" not in lab.run("secondary", q).stdout
    # cel is not replicated: each stack keeps its own
    cel = "su postgres -c \"psql -At -d asterisk -c 'SELECT count(*) FROM cel'\""
    lab.run("secondary", "su postgres -c \"psql -q -d asterisk -c \\\"INSERT INTO cel (eventtype, eventtime, linkedid) "
                         "VALUES ('CHAN_START', now(), 'only-on-secondary')\\\"\"", check=True)
    before = lab.run("secondary", cel).stdout
    assert lab.run("primary", f"/usr/sbin/xivo-master-slave-db-replication {s}", timeout=120).returncode == 0
    assert lab.run("secondary", cel).stdout == before


def test_wazo_sync(lab, ha_reset):
    p, s = lab.ip("primary"), lab.ip("secondary")
    out = lab.run("primary", "wazo-sync")
    assert out.returncode == 1 and out.stdout.strip() == "HA not configured or not a master node"
    assert curl(lab, "primary", "PUT", "/1.1/ha", {"node_type": "master", "remote_address": s})[0] == 204
    lab.run("primary", "rm -f /root/.ssh/xivo_id_rsa /root/.ssh/xivo_id_rsa.pub", check=True)
    assert lab.run("primary", "wazo-sync").returncode == 0
    assert "not synchronizing" in lab.run("primary", "tail -n 1 /var/log/wazo-sync.log").stdout
    try:
        lab.run("primary", "ssh-keygen -q -t rsa -N '' -C 'XiVO HA' -f /root/.ssh/xivo_id_rsa", check=True)
        pub = lab.run("primary", "cat /root/.ssh/xivo_id_rsa.pub", check=True).stdout.strip()
        lab.run("secondary", f"echo '{pub}' >> /root/.ssh/authorized_keys", check=True)
        lab.run("primary", "echo '; synced from primary' > /etc/asterisk/extensions_extra.d/sync-test.conf", check=True)
        out = lab.run("primary", "wazo-sync", timeout=120)
        assert out.returncode == 0, out.stderr
        assert lab.run("secondary", "cat /etc/asterisk/extensions_extra.d/sync-test.conf").stdout.strip() == \
            "; synced from primary"
        # rsync failure -> exit 1: a remote that does not trust the key (the proxy's sshd)
        if "proxy" in lab.hosts:
            untrusting = lab.ip("proxy")
            assert curl(lab, "primary", "PUT", "/1.1/ha", {"node_type": "master", "remote_address": untrusting})[0] == 204
            assert lab.run("primary", "wazo-sync", timeout=120).returncode == 1
            assert "(ERROR): rsync failed" in lab.run("primary", "tail -n 5 /var/log/wazo-sync.log").stdout
    finally:
        lab.run("primary", "rm -f /root/.ssh/xivo_id_rsa /root/.ssh/xivo_id_rsa.pub "
                           "/etc/asterisk/extensions_extra.d/sync-test.conf")
        lab.run("secondary", "sed -i '/XiVO HA/d' /root/.ssh/authorized_keys; "
                             "rm -f /etc/asterisk/extensions_extra.d/sync-test.conf")
