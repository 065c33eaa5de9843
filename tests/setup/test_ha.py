# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role wazo.maintenance_mode.ha on the lab: HA set through Wazo's API, what HA applies delete kept, provd off.

Needs a lab with the stand-in (skipped otherwise):
    LAB_INVENTORY=.lab-setupa/inventory.yml .venv/bin/pytest -v tests/setup/test_ha.py
Proofs: primary = master (remote = secondary), secondary = disabled; `xivo-master-slave-db-replication
<secondary>` succeeds from the primary and the data arrives; no passwordless superuser between the stacks (the
secondary asks the primary's postgres user for a SCRAM password, kept in the primary's root ~/.pgpass 0600; any
other local user of the primary, a wrong password, or a hand-added trust line are refused or replaced); an HA
re-apply no longer deletes the pg_hba line nor listen_addresses; drift (HA config changed, lines deleted, provd started) is repaired by the next run
(changed > 0) and the run after reports 0 changed; check mode reports drift without repairing it; the
wazo-confd path (token) works and never prints the token.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import uuid

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py
from conftest import MOLECULE_RAN_SETUP_TWICE

PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust', 'ha')
HA_PLAYBOOK = labtools.setup_playbook('preflight', 'ha')

PG = '/etc/postgresql/$(pg_lsclusters --no-header | awk \'$2 == "main" {print $1}\' | tail -n1)/main'
TOKEN = 'lab-confd-token-' + uuid.uuid4().hex

# every test runs after PLAYBOOK converged the lab (conftest.py's setup_converged, once for this module)
pytestmark = pytest.mark.usefixtures('setup_converged')


def ha_config(lab, host):
    return json.loads(lab.ssh(host, 'curl -sf http://127.0.0.1:8668/get_ha_config').stdout)


def sysconfd_apply(lab, host, node_type, remote=''):
    body = json.dumps({'node_type': node_type, 'remote_address': remote})
    lab.ssh(host, "curl -sf -X POST -H 'Content-Type: application/json' -d '%s' "
                  "http://127.0.0.1:8668/update_ha_config >/dev/null" % body)


def listen_addresses(lab, host):
    return lab.ssh(host, "runuser -u postgres -- psql -XAtc 'SHOW listen_addresses'").stdout.strip()


def replicate(lab):
    return lab.ssh('primary', '/usr/sbin/xivo-master-slave-db-replication %s' % lab.address('secondary'), check=False)


def assert_converged_state(lab):
    assert ha_config(lab, 'primary') == {'node_type': 'master', 'remote_address': lab.address('secondary')}
    assert ha_config(lab, 'secondary')['node_type'] == 'disabled'
    for host in ('primary', 'secondary'):
        assert listen_addresses(lab, host) == '*'
        conf = lab.ssh(host, 'cat %s/conf.d/wazo-maintenance.conf' % PG).stdout
        assert "listen_addresses = '*'" in conf.splitlines()
    hba = lab.ssh('secondary', 'cat %s/pg_hba.conf' % PG).stdout.splitlines()
    primary = [line for line in hba if line.split()[:4] == ['host', 'asterisk', 'postgres', '%s/32' % lab.address('primary')]]
    assert len(primary) == 1
    assert primary[0].split()[4] == 'scram-sha-256'
    # out of reach of the HA apply's `sed '/^host asterisk postgres/d'`
    assert not primary[0].startswith('host asterisk postgres')
    assert lab.ssh('primary', 'stat -c "%a %U" /root/.pgpass').stdout.strip() == '600 root'
    pgpass = lab.ssh('primary', 'cat /root/.pgpass').stdout.splitlines()
    assert '%s:5432:asterisk:postgres:lab-replication-secret' % lab.address('secondary') in pgpass
    assert lab.ssh('secondary', 'systemctl is-active wazo-provd', check=False).stdout.strip() == 'inactive'
    assert lab.ssh('secondary', 'test -f /var/lib/wazo/wazo-provd-disabled && '
                                'cat /etc/systemd/system/wazo-provd.service.d/wazo-maintenance.conf').stdout.splitlines()[1:] \
        == ['[Unit]', 'ConditionPathExists=!/var/lib/wazo/wazo-provd-disabled']
    assert lab.ssh('primary', 'systemctl is-active wazo-provd').stdout.strip() == 'active'


def test_converged_state(lab):
    assert_converged_state(lab)


@MOLECULE_RAN_SETUP_TWICE
def test_second_run_changes_nothing(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


@MOLECULE_RAN_SETUP_TWICE
def test_check_mode_diff_is_clean(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_replication_from_the_primary_succeeds_and_copies_data(lab):
    name = 'wazo-mm-test-%s' % uuid.uuid4().hex[:8]
    sql = "runuser -u postgres -- psql -XAt -d asterisk -c \"%s\""
    lab.ssh('primary', sql % ("INSERT INTO tenant (uuid, name) VALUES ('%s', '%s')" % (uuid.uuid4(), name)))
    try:
        proc = replicate(lab)
        assert proc.returncode == 0, proc
        assert 'Slave replication completed succesfully' in proc.stdout
        count = lab.ssh('secondary', sql % ("SELECT count(*) FROM tenant WHERE name = '%s'" % name)).stdout.strip()
        assert count == '1'
    finally:
        lab.ssh('primary', sql % ("DELETE FROM tenant WHERE name = '%s'" % name))
        replicate(lab)


def psql_as(lab, user, password=None):
    """`SELECT 1` on the secondary's asterisk database as postgres, run by a local `user` of the primary."""
    env = 'PGPASSWORD=%s ' % password if password else 'PGPASSFILE=/nonexistent '
    return lab.ssh('primary', 'cd /tmp && runuser -u %s -- env %spsql -w -h %s -U postgres -XAtc "SELECT 1" asterisk'
                   % (user, env, lab.address('secondary')), check=False)


def test_no_passwordless_superuser_from_the_primary(lab):
    """Only root's ~/.pgpass logs in: any other local user of the primary, with no or a wrong password, is refused."""
    ok = lab.ssh('primary', 'psql -w -h %s -U postgres -XAtc "SELECT 1" asterisk' % lab.address('secondary'), check=False)
    assert (ok.returncode, ok.stdout.strip()) == (0, '1'), ok
    for user, password in (('postgres', None), ('nobody', None), ('nobody', 'not-the-password')):
        proc = psql_as(lab, user, password)
        assert proc.returncode != 0, (user, proc)
        assert 'password' in proc.stderr, (user, proc)  # "no password supplied" / "password authentication failed"


def test_a_hand_added_trust_line_is_replaced(lab, tmp_path):
    """The upstream README's manual `host asterisk postgres <primary>/32 trust` line becomes the password line."""
    hba = '%s/pg_hba.conf' % PG
    lab.ssh('secondary', "sed -i '/wazo.maintenance_mode ha$/d' %s && sed -i '1i host asterisk postgres %s/32 trust' %s "
                         "&& systemctl reload postgresql" % (hba, lab.address('primary'), hba))
    assert psql_as(lab, 'nobody').returncode == 0  # the passwordless superuser the role must remove
    run = labtools.run_playbook(tmp_path, [lab.path], HA_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed > 0, run
    assert psql_as(lab, 'nobody').returncode != 0
    assert_converged_state(lab)


def test_ha_reapply_no_longer_deletes_the_lines(lab, tmp_path):
    """The secondary's HA re-applied by the API (what an operator or Wazo does) keeps replication working."""
    sysconfd_apply(lab, 'secondary', 'disabled')
    lab.ssh('secondary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    assert listen_addresses(lab, 'secondary') == '*'
    proc = replicate(lab)
    assert proc.returncode == 0, proc
    run = labtools.run_playbook(tmp_path, [lab.path], HA_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


def make_drift(lab):
    # the primary's HA disabled (rewrites its cron, sentinels, restarts PostgreSQL)
    sysconfd_apply(lab, 'primary', 'disabled')
    # the secondary's pg_hba line and listen_addresses gone (any tool, any sed), PostgreSQL restarted on them
    lab.ssh('secondary', "sed -i '/wazo.maintenance_mode ha$/d' %s/pg_hba.conf && rm -f %s/conf.d/wazo-maintenance.conf "
                         "&& systemctl restart postgresql.service" % (PG, PG))
    # wazo-provd running again on the secondary
    lab.ssh('secondary', 'rm -f /var/lib/wazo/wazo-provd-disabled && systemctl start wazo-provd')
    lab.ssh('secondary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    assert replicate(lab).returncode == 1


def test_drift_is_reported_by_check_mode_and_repaired_by_the_next_run(lab, tmp_path):
    make_drift(lab)
    check = labtools.run_playbook(tmp_path / 'check', [lab.path], PLAYBOOK, ['--check', '--diff'])
    assert check.rc == 0, check
    assert check.data['stats']['primary']['changed'] > 0, check
    assert check.data['stats']['secondary']['changed'] > 0, check
    assert ha_config(lab, 'primary')['node_type'] == 'disabled'  # check mode changed nothing
    assert listen_addresses(lab, 'secondary') == 'localhost'

    repair = labtools.run_playbook(tmp_path / 'repair', [lab.path], PLAYBOOK)
    assert repair.rc == 0, repair
    assert repair.data['stats']['primary']['changed'] > 0, repair
    assert repair.data['stats']['secondary']['changed'] > 0, repair
    assert_converged_state(lab)
    assert lab.ssh('primary', 'cat /etc/cron.d/xivo-ha-master').stdout.count(lab.address('secondary')) == 1
    assert replicate(lab).returncode == 0

    again = labtools.run_playbook(tmp_path / 'again', [lab.path], PLAYBOOK)
    assert again.rc == 0, again
    assert again.changed == 0, again


def test_confd_api_with_a_token(lab, tmp_path):
    sysconfd_apply(lab, 'primary', 'disabled')
    lab.ssh('primary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    mark = int(lab.ssh('primary', 'wc -l < /var/log/wazo-standin/api.log').stdout)
    run = labtools.run_playbook(tmp_path / 'apply', [lab.path], HA_PLAYBOOK, ['-e', 'wazo_mm_confd_token=' + TOKEN])
    assert run.rc == 0, run
    assert run.data['stats']['primary']['changed'] > 0, run
    assert TOKEN not in run.stdout + run.stderr
    api = lab.ssh('primary', 'tail -n +%d /var/log/wazo-standin/api.log' % (mark + 1)).stdout
    assert 'PUT /1.1/ha' in api
    assert_converged_state(lab)

    again = labtools.run_playbook(tmp_path / 'again', [lab.path], HA_PLAYBOOK, ['-e', 'wazo_mm_confd_token=' + TOKEN])
    assert again.rc == 0, again
    assert again.changed == 0, again


def test_confd_bad_token_fails_with_a_message_and_no_token(lab, tmp_path):
    """The stand-in refuses an empty token (401), like confd refuses a bad one: the message says so."""
    run = labtools.run_playbook(tmp_path, [lab.path], HA_PLAYBOOK, ['-e', 'wazo_mm_ha_api=confd'])
    assert run.rc != 0, run
    assert 'answered 401' in run.failures, run
    assert run.changed == 0, run
