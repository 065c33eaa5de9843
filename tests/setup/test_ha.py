# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role wazo.maintenance_mode.ha on the lab: HA set through Wazo's API, what HA applies delete kept, provd off.

Needs a lab with the stand-in (skipped otherwise):
    LAB_INVENTORY=.lab-setupa/inventory.yml .venv/bin/pytest -v tests/setup/test_ha.py
Proofs: primary = master (remote = secondary), secondary = disabled; `xivo-master-slave-db-replication
<secondary>` succeeds from the primary and the data arrives; an HA re-apply no longer deletes the trust line
nor listen_addresses; drift (HA config changed, lines deleted, provd started) is repaired by the next run
(changed > 0) and the run after reports 0 changed; check mode reports drift without repairing it; the
wazo-confd path (token) works and never prints the token.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = REPO / '.venv' / 'bin' / 'ansible-playbook'

PLAYBOOK = """
- name: Preflight
  hosts: proxy:primary:secondary
  gather_facts: false
  any_errors_fatal: true
  roles:
    - role: wazo.maintenance_mode.preflight
- name: SSH trust
  hosts: proxy:primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.ssh_trust
- name: HA
  hosts: primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.ha
"""

HA_PLAYBOOK = """
- name: Preflight
  hosts: proxy:primary:secondary
  gather_facts: false
  any_errors_fatal: true
  roles:
    - role: wazo.maintenance_mode.preflight
- name: HA
  hosts: primary:secondary
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.ha
"""

PG = '/etc/postgresql/$(pg_lsclusters --no-header | awk \'$2 == "main" {print $1}\' | tail -n1)/main'
TOKEN = 'lab-confd-token-' + uuid.uuid4().hex

# --------------------------------------------------------------------------------------------- helpers
class Run:
    """One ansible-playbook run, read through the ansible.posix.json callback."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        try:
            self.data = json.loads(proc.stdout[proc.stdout.index('{'):])
        except ValueError:
            raise AssertionError('no JSON from ansible-playbook:\n%s\n%s' % (proc.stdout[-3000:], proc.stderr[-3000:]))

    @property
    def changed(self):
        return sum(s.get('changed', 0) for s in self.data.get('stats', {}).values())

    def results(self):
        for play in self.data.get('plays', []):
            for task in play.get('tasks', []):
                for host, res in task.get('hosts', {}).items():
                    yield play['play']['name'], task['task']['name'], host, res

    @property
    def failures(self):
        msgs = []
        for _, _, host, res in self.results():
            if res.get('failed') or res.get('unreachable'):
                msgs.append('%s: %s' % (host, res.get('msg', '')))
                msgs += ['%s: %s' % (host, item.get('msg', '')) for item in res.get('results', [])
                         if isinstance(item, dict) and item.get('failed')]
        return ' | '.join(msgs)

    @property
    def plays_with_tasks(self):
        return [p['play']['name'] for p in self.data.get('plays', []) if p.get('tasks')]

    def __repr__(self):
        return 'rc=%s changed=%s failures=%s stderr=%s' % (self.rc, self.changed, self.failures, self.stderr[-2000:])


def run_playbook(tmp_path, inventories, playbook=PLAYBOOK, args=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / 'playbook.yml'
    path.write_text(playbook)
    cmd = [str(ANSIBLE_PLAYBOOK)]
    for inv in inventories:
        cmd += ['-i', str(inv)]
    cmd += [str(path)] + list(args)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
               ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0')
    return Run(subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=1200))


def lab_inventory():
    value = os.environ.get('LAB_INVENTORY')
    if not value:
        pytest.skip('no lab: set LAB_INVENTORY=.lab-NAME/inventory.yml (make lab-up; the stand-in installed)')
    path = Path(value) if os.path.isabs(value) else REPO / value
    if not path.is_file():
        pytest.skip('no lab: LAB_INVENTORY=%s does not exist (make lab-up)' % value)
    return path


class Lab:
    """Run shell commands on the lab hosts over the lab's own SSH settings."""

    def __init__(self, inventory):
        out = subprocess.run([str(REPO / '.venv' / 'bin' / 'ansible-inventory'), '-i', str(inventory), '--list'],
                             cwd=str(REPO), capture_output=True, text=True, check=True,
                             env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'))).stdout
        self.hostvars = json.loads(out)['_meta']['hostvars']

    def address(self, host):
        return self.hostvars[host].get('wazo_mm_address') or self.hostvars[host]['ansible_host']

    def sh(self, host, script, check=True):
        hv = self.hostvars[host]
        cmd = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10']
        if hv.get('ansible_ssh_private_key_file'):
            cmd += ['-i', hv['ansible_ssh_private_key_file']]
        cmd += shlex.split(hv.get('ansible_ssh_common_args', ''))
        cmd += ['%s@%s' % (hv.get('ansible_user', 'root'), hv['ansible_host']), script]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError('%s: %r failed (%s): %s %s' % (host, script, proc.returncode, proc.stdout, proc.stderr))
        return proc




@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    inventory = lab_inventory()
    run = run_playbook(tmp_path_factory.mktemp('converge'), [inventory])
    assert run.rc == 0, run
    result = Lab(inventory)
    result.inventory = inventory
    return result


def ha_config(lab, host):
    return json.loads(lab.sh(host, 'curl -sf http://127.0.0.1:8668/get_ha_config').stdout)


def sysconfd_apply(lab, host, node_type, remote=''):
    body = json.dumps({'node_type': node_type, 'remote_address': remote})
    lab.sh(host, "curl -sf -X POST -H 'Content-Type: application/json' -d '%s' "
                 "http://127.0.0.1:8668/update_ha_config >/dev/null" % body)


def listen_addresses(lab, host):
    return lab.sh(host, "runuser -u postgres -- psql -XAtc 'SHOW listen_addresses'").stdout.strip()


def replicate(lab):
    return lab.sh('primary', '/usr/sbin/xivo-master-slave-db-replication %s' % lab.address('secondary'), check=False)


def assert_converged_state(lab):
    assert ha_config(lab, 'primary') == {'node_type': 'master', 'remote_address': lab.address('secondary')}
    assert ha_config(lab, 'secondary')['node_type'] == 'disabled'
    for host in ('primary', 'secondary'):
        assert listen_addresses(lab, host) == '*'
        conf = lab.sh(host, 'cat %s/conf.d/wazo-maintenance.conf' % PG).stdout
        assert "listen_addresses = '*'" in conf.splitlines()
    hba = lab.sh('secondary', 'cat %s/pg_hba.conf' % PG).stdout.splitlines()
    trust = [line for line in hba if line.split()[:5] == ['host', 'asterisk', 'postgres',
                                                         '%s/32' % lab.address('primary'), 'trust']]
    assert len(trust) == 1
    # out of reach of the HA apply's `sed '/^host asterisk postgres/d'`
    assert not trust[0].startswith('host asterisk postgres')
    assert lab.sh('secondary', 'systemctl is-active wazo-provd', check=False).stdout.strip() == 'inactive'
    assert lab.sh('secondary', 'test -f /var/lib/wazo/wazo-provd-disabled && '
                               'cat /etc/systemd/system/wazo-provd.service.d/wazo-maintenance.conf').stdout.splitlines()[1:] \
        == ['[Unit]', 'ConditionPathExists=!/var/lib/wazo/wazo-provd-disabled']
    assert lab.sh('primary', 'systemctl is-active wazo-provd').stdout.strip() == 'active'


def test_converged_state(lab):
    assert_converged_state(lab)


def test_second_run_changes_nothing(lab, tmp_path):
    run = run_playbook(tmp_path, [lab.inventory])
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_check_mode_diff_is_clean(lab, tmp_path):
    run = run_playbook(tmp_path, [lab.inventory], PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_replication_from_the_primary_succeeds_and_copies_data(lab):
    name = 'wazo-mm-test-%s' % uuid.uuid4().hex[:8]
    sql = "runuser -u postgres -- psql -XAt -d asterisk -c \"%s\""
    lab.sh('primary', sql % ("INSERT INTO tenant (uuid, name) VALUES ('%s', '%s')" % (uuid.uuid4(), name)))
    try:
        proc = replicate(lab)
        assert proc.returncode == 0, proc
        assert 'Slave replication completed succesfully' in proc.stdout
        count = lab.sh('secondary', sql % ("SELECT count(*) FROM tenant WHERE name = '%s'" % name)).stdout.strip()
        assert count == '1'
    finally:
        lab.sh('primary', sql % ("DELETE FROM tenant WHERE name = '%s'" % name))
        replicate(lab)


def test_ha_reapply_no_longer_deletes_the_lines(lab, tmp_path):
    """The secondary's HA re-applied by the API (what an operator or Wazo does) keeps replication working."""
    sysconfd_apply(lab, 'secondary', 'disabled')
    lab.sh('secondary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    assert listen_addresses(lab, 'secondary') == '*'
    proc = replicate(lab)
    assert proc.returncode == 0, proc
    run = run_playbook(tmp_path, [lab.inventory], HA_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


def make_drift(lab):
    # the primary's HA disabled (rewrites its cron, sentinels, restarts PostgreSQL)
    sysconfd_apply(lab, 'primary', 'disabled')
    # the secondary's trust line and listen_addresses gone (any tool, any sed), PostgreSQL restarted on them
    lab.sh('secondary', "sed -i '/wazo.maintenance_mode ha$/d' %s/pg_hba.conf && rm -f %s/conf.d/wazo-maintenance.conf "
                        "&& systemctl restart postgresql.service" % (PG, PG))
    # wazo-provd running again on the secondary
    lab.sh('secondary', 'rm -f /var/lib/wazo/wazo-provd-disabled && systemctl start wazo-provd')
    lab.sh('secondary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    assert replicate(lab).returncode == 1


def test_drift_is_reported_by_check_mode_and_repaired_by_the_next_run(lab, tmp_path):
    make_drift(lab)
    check = run_playbook(tmp_path / 'check', [lab.inventory], PLAYBOOK, ['--check', '--diff'])
    assert check.rc == 0, check
    assert check.data['stats']['primary']['changed'] > 0, check
    assert check.data['stats']['secondary']['changed'] > 0, check
    assert ha_config(lab, 'primary')['node_type'] == 'disabled'  # check mode changed nothing
    assert listen_addresses(lab, 'secondary') == 'localhost'

    repair = run_playbook(tmp_path / 'repair', [lab.inventory])
    assert repair.rc == 0, repair
    assert repair.data['stats']['primary']['changed'] > 0, repair
    assert repair.data['stats']['secondary']['changed'] > 0, repair
    assert_converged_state(lab)
    assert lab.sh('primary', 'cat /etc/cron.d/xivo-ha-master').stdout.count(lab.address('secondary')) == 1
    assert replicate(lab).returncode == 0

    again = run_playbook(tmp_path / 'again', [lab.inventory])
    assert again.rc == 0, again
    assert again.changed == 0, again


def test_confd_api_with_a_token(lab, tmp_path):
    sysconfd_apply(lab, 'primary', 'disabled')
    lab.sh('primary', 'for i in $(seq 30); do pg_isready -q && exit 0; sleep 1; done; exit 1')
    mark = int(lab.sh('primary', 'wc -l < /var/log/wazo-standin/api.log').stdout)
    run = run_playbook(tmp_path / 'apply', [lab.inventory], HA_PLAYBOOK, ['-e', 'wazo_mm_confd_token=' + TOKEN])
    assert run.rc == 0, run
    assert run.data['stats']['primary']['changed'] > 0, run
    assert TOKEN not in run.stdout + run.stderr
    api = lab.sh('primary', 'tail -n +%d /var/log/wazo-standin/api.log' % (mark + 1)).stdout
    assert 'PUT /1.1/ha' in api
    assert_converged_state(lab)

    again = run_playbook(tmp_path / 'again', [lab.inventory], HA_PLAYBOOK, ['-e', 'wazo_mm_confd_token=' + TOKEN])
    assert again.rc == 0, again
    assert again.changed == 0, again


def test_confd_bad_token_fails_with_a_message_and_no_token(lab, tmp_path):
    """The stand-in refuses an empty token (401), like confd refuses a bad one: the message says so."""
    run = run_playbook(tmp_path, [lab.inventory], HA_PLAYBOOK, ['-e', 'wazo_mm_ha_api=confd'])
    assert run.rc != 0, run
    assert 'answered 401' in run.failures, run
    assert run.changed == 0, run
