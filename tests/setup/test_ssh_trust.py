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

import uuid

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py

# setup.yml's first plays for these roles; ha runs after ssh_trust (wazo-sync needs the HA key).
PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust', 'ha')
SSH_PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust')

# every test runs after PLAYBOOK converged the lab (conftest.py's setup_converged, once for this module)
pytestmark = pytest.mark.usefixtures('setup_converged')


def test_second_run_changes_nothing(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_check_mode_diff_is_clean(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_runs_a_command_on_each_stack(lab, stack):
    out = lab.ssh('proxy', 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o PasswordAuthentication=no '
                           'root@%s hostname' % lab.address(stack)).stdout.strip()
    assert out == stack


def test_proxy_key_is_its_own_ed25519_key(lab):
    out = lab.ssh('proxy', 'ssh-keygen -l -f /root/.ssh/id_ed25519.pub').stdout
    assert '(ED25519)' in out


def test_ha_key_is_what_wazo_sync_init_makes(lab):
    out = lab.ssh('primary', 'ssh-keygen -l -f /root/.ssh/xivo_id_rsa.pub').stdout
    assert 'XiVO HA (RSA)' in out
    assert lab.ssh('primary', 'stat -c %a /root/.ssh/xivo_id_rsa').stdout.strip() == '600'


def test_authorizations_are_restricted_by_source_address(lab):
    proxy_pub = lab.ssh('proxy', 'cut -d" " -f2 /root/.ssh/id_ed25519.pub').stdout.strip()
    ha_pub = lab.ssh('primary', 'cut -d" " -f2 /root/.ssh/xivo_id_rsa.pub').stdout.strip()
    for stack in ('primary', 'secondary'):
        lines = [line for line in lab.ssh(stack, 'cat /root/.ssh/authorized_keys').stdout.splitlines() if proxy_pub in line]
        assert len(lines) == 1
        assert lines[0].startswith('from="%s",' % lab.address('proxy'))
    lines = [line for line in lab.ssh('secondary', 'cat /root/.ssh/authorized_keys').stdout.splitlines() if ha_pub in line]
    assert len(lines) == 1
    assert lines[0].startswith('from="%s",' % lab.address('primary'))
    # the HA key is not authorized on the primary nor the proxy
    assert ha_pub not in lab.ssh('primary', 'cat /root/.ssh/authorized_keys').stdout


def test_ha_key_is_refused_from_another_address(lab):
    """from= is enforced: the HA key, copied to the proxy for this test only, cannot log in to the secondary."""
    key = lab.ssh('primary', 'cat /root/.ssh/xivo_id_rsa').stdout
    tmp = '/root/.ssh/wazo-mm-test-%s' % uuid.uuid4().hex[:8]
    try:
        lab.ssh('proxy', "umask 077 && cat > %s <<'KEY'\n%sKEY" % (tmp, key))
        proc = lab.ssh('proxy', 'ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes '
                                'root@%s true' % (tmp, lab.address('secondary')), check=False)
        assert proc.returncode == 255, proc
        assert 'Permission denied' in proc.stderr
    finally:
        lab.ssh('proxy', 'rm -f %s' % tmp)


def test_primary_reaches_the_secondary_with_the_ha_key_without_prompt(lab):
    out = lab.ssh('primary', 'ssh -i /root/.ssh/xivo_id_rsa -o BatchMode=yes -o StrictHostKeyChecking=yes '
                             '-o PreferredAuthentications=publickey root@%s hostname' % lab.address('secondary'))
    assert out.stdout.strip() == 'secondary'


def test_known_hosts_pin_the_stacks_host_keys(lab):
    for host, targets in (('proxy', ('primary', 'secondary')), ('primary', ('secondary',))):
        for target in targets:
            pinned = lab.ssh(host, 'ssh-keygen -F %s -f /root/.ssh/known_hosts' % lab.address(target)).stdout
            actual = lab.ssh(target, 'cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub').stdout.strip()
            assert actual in pinned


def test_wazo_sync_rsyncs_to_the_secondary(lab):
    name = '/etc/asterisk/extensions_extra.d/wazo-mm-test-%s.conf' % uuid.uuid4().hex[:8]
    content = '; wazo-sync proof %s' % uuid.uuid4().hex
    try:
        lab.ssh('primary', "printf '%%s\\n' '%s' > %s" % (content, name))
        lab.ssh('primary', 'wazo-sync')
        assert lab.ssh('secondary', 'cat %s' % name).stdout.strip() == content
    finally:
        lab.ssh('primary', 'rm -f %s && wazo-sync' % name)
    assert lab.ssh('secondary', 'test -e %s' % name, check=False).returncode == 1


def test_removed_authorization_is_restored(lab, tmp_path):
    lab.ssh('secondary', "sed -i '/XiVO HA/d' /root/.ssh/authorized_keys")
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.data['stats']['secondary']['changed'] >= 1, run
    lab.ssh('primary', 'ssh -i /root/.ssh/xivo_id_rsa -o BatchMode=yes root@%s true' % lab.address('secondary'))


def test_stale_and_missing_host_keys_are_repaired(lab, tmp_path):
    """known_hosts is read once per run: a removed pin and a stale key (same name and type) are both fixed."""
    secondary = lab.address('secondary')
    lab.ssh('primary', "sed -i '/^%s ssh-ed25519 /d' /root/.ssh/known_hosts" % secondary.replace('.', r'\.'))
    lab.ssh('proxy', "sed -i 's/^\\(%s ssh-ed25519 \\).*/\\1%s/' /root/.ssh/known_hosts"
            % (secondary.replace('.', r'\.'), 'AAAAC3NzaC1lZDI1NTE5AAAAIEl0sLZnxhhTuQKO3+pUxNXXMSbFw0O7Hv2UfFaSSvhb'))
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.data['stats']['primary']['changed'] >= 1, run
    assert run.data['stats']['proxy']['changed'] >= 1, run
    for host, key in (('proxy', ''), ('primary', '-i /root/.ssh/xivo_id_rsa ')):
        lab.ssh(host, 'ssh %s-o BatchMode=yes -o StrictHostKeyChecking=yes root@%s true' % (key, secondary))
        stale = lab.ssh(host, 'grep -c IEl0sLZnxhhTuQKO3 /root/.ssh/known_hosts', check=False).stdout.strip()
        assert stale == '0'
