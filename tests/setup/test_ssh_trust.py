# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role wazo.maintenance_mode.ssh_trust on the lab: password-less, non-interactive, restricted root SSH.

Needs a lab with the stand-in (skipped otherwise):
    LAB_INVENTORY=.lab-setupa/inventory.yml .venv/bin/pytest -v tests/setup/test_ssh_trust.py
Proofs: the proxy runs a command on each stack without a password or a host key prompt; `wazo-sync` on the
primary rsyncs to the secondary; the keys are restricted with from= (a key used from another host is refused);
the role is idempotent, check-mode clean, and repairs a removed authorization.
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

# setup.yml's first plays for these roles; ha runs after ssh_trust (wazo-sync needs the HA key).
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

SSH_PLAYBOOK = """
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
"""

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


def test_second_run_changes_nothing(lab, tmp_path):
    run = run_playbook(tmp_path, [lab.inventory], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_check_mode_diff_is_clean(lab, tmp_path):
    run = run_playbook(tmp_path, [lab.inventory], SSH_PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_runs_a_command_on_each_stack(lab, stack):
    out = lab.sh('proxy', 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o PasswordAuthentication=no '
                          'root@%s hostname' % lab.address(stack)).stdout.strip()
    assert out == stack


def test_proxy_key_is_its_own_ed25519_key(lab):
    out = lab.sh('proxy', 'ssh-keygen -l -f /root/.ssh/id_ed25519.pub').stdout
    assert '(ED25519)' in out


def test_ha_key_is_what_wazo_sync_init_makes(lab):
    out = lab.sh('primary', 'ssh-keygen -l -f /root/.ssh/xivo_id_rsa.pub').stdout
    assert 'XiVO HA (RSA)' in out
    assert lab.sh('primary', 'stat -c %a /root/.ssh/xivo_id_rsa').stdout.strip() == '600'


def test_authorizations_are_restricted_by_source_address(lab):
    proxy_pub = lab.sh('proxy', 'cut -d" " -f2 /root/.ssh/id_ed25519.pub').stdout.strip()
    ha_pub = lab.sh('primary', 'cut -d" " -f2 /root/.ssh/xivo_id_rsa.pub').stdout.strip()
    for stack in ('primary', 'secondary'):
        lines = [line for line in lab.sh(stack, 'cat /root/.ssh/authorized_keys').stdout.splitlines() if proxy_pub in line]
        assert len(lines) == 1
        assert lines[0].startswith('from="%s",' % lab.address('proxy'))
    lines = [line for line in lab.sh('secondary', 'cat /root/.ssh/authorized_keys').stdout.splitlines() if ha_pub in line]
    assert len(lines) == 1
    assert lines[0].startswith('from="%s",' % lab.address('primary'))
    # the HA key is not authorized on the primary nor the proxy
    assert ha_pub not in lab.sh('primary', 'cat /root/.ssh/authorized_keys').stdout


def test_ha_key_is_refused_from_another_address(lab):
    """from= is enforced: the HA key, copied to the proxy for this test only, cannot log in to the secondary."""
    key = lab.sh('primary', 'cat /root/.ssh/xivo_id_rsa').stdout
    tmp = '/root/.ssh/wazo-mm-test-%s' % uuid.uuid4().hex[:8]
    try:
        lab.sh('proxy', "umask 077 && cat > %s <<'KEY'\n%sKEY" % (tmp, key))
        proc = lab.sh('proxy', 'ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes '
                               'root@%s true' % (tmp, lab.address('secondary')), check=False)
        assert proc.returncode == 255, proc
        assert 'Permission denied' in proc.stderr
    finally:
        lab.sh('proxy', 'rm -f %s' % tmp)


def test_primary_reaches_the_secondary_with_the_ha_key_without_prompt(lab):
    out = lab.sh('primary', 'ssh -i /root/.ssh/xivo_id_rsa -o BatchMode=yes -o StrictHostKeyChecking=yes '
                            '-o PreferredAuthentications=publickey root@%s hostname' % lab.address('secondary'))
    assert out.stdout.strip() == 'secondary'


def test_known_hosts_pin_the_stacks_host_keys(lab):
    for host, targets in (('proxy', ('primary', 'secondary')), ('primary', ('secondary',))):
        for target in targets:
            pinned = lab.sh(host, 'ssh-keygen -F %s -f /root/.ssh/known_hosts' % lab.address(target)).stdout
            actual = lab.sh(target, 'cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub').stdout.strip()
            assert actual in pinned


def test_wazo_sync_rsyncs_to_the_secondary(lab):
    name = '/etc/asterisk/extensions_extra.d/wazo-mm-test-%s.conf' % uuid.uuid4().hex[:8]
    content = '; wazo-sync proof %s' % uuid.uuid4().hex
    try:
        lab.sh('primary', "printf '%%s\\n' '%s' > %s" % (content, name))
        lab.sh('primary', 'wazo-sync')
        assert lab.sh('secondary', 'cat %s' % name).stdout.strip() == content
    finally:
        lab.sh('primary', 'rm -f %s && wazo-sync' % name)
    assert lab.sh('secondary', 'test -e %s' % name, check=False).returncode == 1


def test_removed_authorization_is_restored(lab, tmp_path):
    lab.sh('secondary', "sed -i '/XiVO HA/d' /root/.ssh/authorized_keys")
    run = run_playbook(tmp_path, [lab.inventory], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.data['stats']['secondary']['changed'] >= 1, run
    lab.sh('primary', 'ssh -i /root/.ssh/xivo_id_rsa -o BatchMode=yes root@%s true' % lab.address('secondary'))
