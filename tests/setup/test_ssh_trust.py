# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role wazo.maintenance_mode.ssh_trust on the lab: password-less, non-interactive, restricted root SSH.

Needs a lab with the stand-in (skipped otherwise):
    LAB_INVENTORY=.lab-setupa/inventory.yml .venv/bin/pytest -v tests/setup/test_ssh_trust.py
Proofs: the proxy runs the commands it needs on each stack without a password or a host key prompt (the
channel count, the health probe, the HA check's commands where the ha_check role lists them) and nothing else:
any other command, an argument changed or added, an interactive login, sftp/scp or a tunnel is refused with
the dispatcher's message and a journal line, and changes nothing; `wazo-sync` on the primary rsyncs to the
secondary; the keys are restricted with from= (a key used from another host is refused); the role is
idempotent, check-mode clean, repairs a removed authorization and restricts an earlier unrestricted one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import time
import uuid

import pytest

import labtools  # tests/lab, put on sys.path by conftest.py
from conftest import MOLECULE_RAN_SETUP_TWICE
from ansible_collections.wazo.maintenance_mode.plugins.module_utils import proxy_commands
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.asterisk import parse_channels_count
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.drain import CHANNELS_COUNT_CMD
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_health import (
    REMOTE_COMMAND as HEALTH_COMMAND,
    split_sections,
)

# setup.yml's first plays for these roles; ha runs after ssh_trust (wazo-sync needs the HA key).
PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust', 'ha')
SSH_PLAYBOOK = labtools.setup_playbook('preflight', 'ssh_trust')

# every test runs after PLAYBOOK converged the lab (conftest.py's setup_converged, once for this module)
pytestmark = pytest.mark.usefixtures('setup_converged')


@MOLECULE_RAN_SETUP_TWICE
def test_second_run_changes_nothing(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.changed == 0, run


@MOLECULE_RAN_SETUP_TWICE
def test_check_mode_diff_is_clean(lab, tmp_path):
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK, ['--check', '--diff'])
    assert run.rc == 0, run
    assert run.changed == 0, run


REFUSED = 'wazo-mm-proxy-command: refused '
ALLOW_DIR = proxy_commands.ALLOW_DIR


def proxy_ssh(lab, stack, command=None, options='', stdin='</dev/null', check=False):
    """ssh from the proxy to a stack with the proxy's own key (root's default key there), as its tools do."""
    remote = '' if command is None else ' ' + shlex.quote(command)
    return lab.ssh('proxy', 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o PasswordAuthentication=no '
                            '-o ConnectTimeout=10 %s root@%s%s %s' % (options, lab.address(stack), remote, stdin),
                   check=check, timeout=60)


def journal_since(lab, stack, since):
    """The dispatcher's journal lines on a stack since an epoch (bounded wait for the journal to have them)."""
    text = ''
    for _attempt in range(10):
        text = lab.ssh(stack, 'journalctl -q -o cat -t %s --since @%d --no-pager'
                       % (proxy_commands.PROGRAM, since), check=False).stdout
        if text.strip():
            break
        time.sleep(0.5)
    return text


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_runs_a_command_on_each_stack(lab, stack):
    """The channel count (wait_for_drain, wazo-mode) over the proxy's key, parsed by the collection's parser."""
    proc = proxy_ssh(lab, stack, CHANNELS_COUNT_CMD, check=True)
    counts = parse_channels_count(proc.stdout)
    assert counts['channels'] == lab.channels(stack)['channels'] == 0, proc
    assert REFUSED not in proc.stderr


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_runs_the_health_probe_on_each_stack(lab, stack):
    """stack_health's one command runs over the proxy's key: its three sections come back."""
    proc = proxy_ssh(lab, stack, HEALTH_COMMAND)
    assert proc.returncode == 0 and REFUSED not in proc.stderr, proc
    sections = split_sections(proc.stdout)
    assert set(sections) == {'services', 'iptables', 'nft'}, proc.stdout
    assert sections['services'][0] == lab.ssh(stack, 'wazo-service status', check=False).returncode
    assert sections['iptables'][0] == 0, proc.stdout


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
@pytest.mark.parametrize('command', ['id', 'hostname', 'cat /etc/shadow', 'bash -i', CHANNELS_COUNT_CMD + '; id',
                                     "asterisk -rx 'core restart now'"])
def test_proxy_key_refuses_any_other_command(lab, stack, command):
    """Refused with the message naming the command and the allow-list, a journal line, exit 126, no output."""
    since = int(time.time()) - 1
    proc = proxy_ssh(lab, stack, command)
    assert proc.returncode == proxy_commands.REFUSED_RC == 126, proc
    assert proc.stdout == '', proc
    assert proc.stderr.startswith(REFUSED + 'the command %r' % command), proc
    assert ALLOW_DIR + '/*.list' in proc.stderr
    assert '%sthe command %r' % (REFUSED, command) in journal_since(lab, stack, since)


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_refused_commands_change_nothing(lab, stack):
    """A refused command runs nothing, not even the part after an allowed one."""
    marker = '/root/wazo-mm-refused-%s' % uuid.uuid4().hex[:8]
    for command in ('touch %s' % marker, '%s; touch %s' % (CHANNELS_COUNT_CMD, marker),
                    '%s && touch %s' % (CHANNELS_COUNT_CMD, marker), 'true; touch %s' % marker):
        proc = proxy_ssh(lab, stack, command)
        assert proc.returncode == 126 and REFUSED in proc.stderr, proc
    assert lab.ssh(stack, 'test -e %s' % marker, check=False).returncode == 1


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_key_refuses_an_interactive_login(lab, stack):
    """No pty at all (-tt fails), and a shell session without a command is refused by the dispatcher."""
    proc = proxy_ssh(lab, stack, options='-tt')
    assert proc.returncode != 0 and 'PTY allocation request failed' in proc.stderr, proc
    assert 'uid=' not in proc.stdout
    proc = proxy_ssh(lab, stack, options='-tt', command='id')
    assert proc.returncode != 0 and 'uid=' not in proc.stdout, proc
    since = int(time.time()) - 1
    proc = proxy_ssh(lab, stack, options='-T', stdin="<<'EOF'\nid\ntouch /root/wazo-mm-login\nEOF")
    assert proc.returncode == 126, proc
    assert REFUSED + 'an interactive login (no command)' in proc.stderr
    assert 'uid=' not in proc.stdout
    assert lab.ssh(stack, 'test -e /root/wazo-mm-login', check=False).returncode == 1
    assert REFUSED + 'an interactive login' in journal_since(lab, stack, since)


@pytest.mark.parametrize('stack', ['primary', 'secondary'])
def test_proxy_key_is_no_file_transfer_nor_tunnel(lab, stack):
    """scp/sftp (a subsystem: the dispatcher refuses it) and a TCP tunnel (restrict) do not work."""
    target = '/root/wazo-mm-scp-%s' % uuid.uuid4().hex[:8]
    proc = lab.ssh('proxy', 'scp -o BatchMode=yes /etc/hostname root@%s:%s' % (lab.address(stack), target),
                   check=False, timeout=60)
    assert proc.returncode != 0, proc
    proc = lab.ssh('proxy', "echo 'get /etc/shadow /tmp/wazo-mm-shadow' | sftp -b - -o BatchMode=yes root@%s"
                   % lab.address(stack), check=False, timeout=60)
    assert proc.returncode != 0, proc
    assert lab.ssh(stack, 'test -e %s' % target, check=False).returncode == 1
    assert lab.ssh('proxy', 'test -e /tmp/wazo-mm-shadow', check=False).returncode == 1
    proc = proxy_ssh(lab, stack, options='-W 127.0.0.1:22')
    assert proc.returncode != 0 and 'SSH-2.0' not in proc.stdout, proc
    assert 'administratively prohibited' in proc.stderr, proc


def test_proxy_key_is_its_own_ed25519_key(lab):
    out = lab.ssh('proxy', 'ssh-keygen -l -f /root/.ssh/id_ed25519.pub').stdout
    assert '(ED25519)' in out


def test_ha_key_is_what_wazo_sync_init_makes(lab):
    out = lab.ssh('primary', 'ssh-keygen -l -f /root/.ssh/xivo_id_rsa.pub').stdout
    assert 'XiVO HA (RSA)' in out
    assert lab.ssh('primary', 'stat -c %a /root/.ssh/xivo_id_rsa').stdout.strip() == '600'


def test_proxy_key_is_restricted_to_the_dispatcher(lab):
    """The authorized_keys line: from= the proxy, restrict (no pty, no forwarding), command= the dispatcher."""
    proxy_pub = lab.ssh('proxy', 'cut -d" " -f2 /root/.ssh/id_ed25519.pub').stdout.strip()
    for stack in ('primary', 'secondary'):
        lines = [line for line in lab.ssh(stack, 'cat /root/.ssh/authorized_keys').stdout.splitlines() if proxy_pub in line]
        assert len(lines) == 1
        options = lines[0].split(' ssh-ed25519 ')[0].split(',')
        assert options == ['from="%s"' % lab.address('proxy'), 'restrict',
                           'command="/usr/local/sbin/%s"' % proxy_commands.PROGRAM], lines[0]
        assert lab.ssh(stack, 'stat -c %a:%U /usr/local/sbin/wazo-mm-proxy-command').stdout.strip() == '755:root'
        listed = lab.ssh(stack, 'wazo-mm-proxy-command --list').stdout
        assert "ssh_trust verify: 'true'" in listed and 'ignored' not in listed


def test_an_earlier_unrestricted_authorization_is_restricted(lab, tmp_path):
    """The line an earlier version wrote (from= only, a root shell) is rewritten by the next run."""
    pub = lab.ssh('proxy', 'cat /root/.ssh/id_ed25519.pub').stdout.strip()
    old = 'from="%s",no-agent-forwarding,no-X11-forwarding,no-port-forwarding %s' % (lab.address('proxy'), pub)
    key = pub.split()[1]
    lab.ssh('secondary', "sed -i '\\|%s|d' /root/.ssh/authorized_keys && echo %s >> /root/.ssh/authorized_keys"
            % (key, shlex.quote(old)))
    assert proxy_ssh(lab, 'secondary', 'hostname').stdout.strip() == 'secondary'  # the old line: a root shell
    run = labtools.run_playbook(tmp_path, [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    assert run.data['stats']['secondary']['changed'] == 1, run
    proc = proxy_ssh(lab, 'secondary', 'hostname')
    assert proc.returncode == 126 and REFUSED in proc.stderr, proc
    lines = [line for line in lab.ssh('secondary', 'cat /root/.ssh/authorized_keys').stdout.splitlines() if key in line]
    assert len(lines) == 1 and 'restrict' in lines[0] and 'command=' in lines[0]


def test_operator_extra_commands_are_allowed_on_both_stacks(lab, tmp_path):
    """wazo_mm_ssh_trust_proxy_extra_commands: exactly those lines, on both stacks; removed, refused again."""
    extra = "asterisk -rx 'core show uptime'"
    playbook = SSH_PLAYBOOK.replace('    - role: wazo.maintenance_mode.ssh_trust\n',
                                    '    - role: wazo.maintenance_mode.ssh_trust\n'
                                    '      vars:\n        wazo_mm_ssh_trust_proxy_extra_commands: ["%s"]\n'
                                    % extra)
    assert playbook != SSH_PLAYBOOK
    try:
        run = labtools.run_playbook(tmp_path / 'extra', [lab.path], playbook)
        assert run.rc == 0, run
        for stack in ('primary', 'secondary'):
            proc = proxy_ssh(lab, stack, extra)
            assert proc.returncode == 0 and 'System uptime' in proc.stdout, proc
            assert proxy_ssh(lab, stack, extra + ' ').returncode == 126
            assert extra in lab.ssh(stack, 'cat %s/operator.list' % ALLOW_DIR).stdout
    finally:
        run = labtools.run_playbook(tmp_path / 'back', [lab.path], SSH_PLAYBOOK)
    assert run.rc == 0, run
    for stack in ('primary', 'secondary'):
        assert proxy_ssh(lab, stack, extra).returncode == 126


HA_CHECK_LIST_PLAY = labtools.TOPOLOGY_PLAY + """
- name: The HA check's commands allowed on the stacks
  hosts: proxy
  gather_facts: false
  tasks:
    - name: Write ha-check.list on the stacks
      ansible.builtin.include_role:
        name: wazo.maintenance_mode.ha_check
        tasks_from: proxy_commands
%s"""


def test_ha_check_commands_are_allowed_where_they_run(lab, tmp_path):
    """ha_check lists its failover commands on the secondary and its failback commands on the primary only;
    the task file is idempotent and check-mode clean."""
    failover, failback = "asterisk -rx 'core show uptime'", "asterisk -rx 'core show version'"
    custom = HA_CHECK_LIST_PLAY % ('      vars:\n'
                                   '        wazo_mm_ha_check_failover_commands: ["%s"]\n'
                                   '        wazo_mm_ha_check_failback_commands: ["%s"]\n' % (failover, failback))
    try:
        run = labtools.run_playbook(tmp_path / 'custom', [lab.path], custom)
        assert run.rc == 0, run
        for args in ([], ['--check', '--diff']):
            again = labtools.run_playbook(tmp_path / ('again%d' % len(args)), [lab.path], custom, args)
            assert again.rc == 0 and again.changed == 0, again
        for stack, allowed, other in (('secondary', failover, failback), ('primary', failback, failover)):
            proc = proxy_ssh(lab, stack, allowed)
            assert proc.returncode == 0 and REFUSED not in proc.stderr, proc
            proc = proxy_ssh(lab, stack, other)
            assert proc.returncode == 126 and REFUSED in proc.stderr, proc
            mode = lab.ssh(stack, 'stat -c %%a:%%U %s/ha-check.list' % ALLOW_DIR).stdout.strip()
            assert mode == '644:root'
    finally:
        run = labtools.run_playbook(tmp_path / 'defaults', [lab.path], HA_CHECK_LIST_PLAY % '')
    assert run.rc == 0, run
    # the defaults: upstream's failover list on the secondary, nothing on the primary
    listed = lab.ssh('secondary', 'wazo-mm-proxy-command --list').stdout
    assert "ha-check.list: \"asterisk -rx 'core reload'\"" in listed
    assert 'ha-check.list' not in lab.ssh('primary', 'wazo-mm-proxy-command --list').stdout


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


STACK_SSH = ("import sys; sys.path.insert(0, '/usr/local/lib/wazo-maintenance'); "
             "from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_ssh import ssh_run, StackSSHError\n"
             "try:\n    print(ssh_run('%s', 'true', known_hosts=%r))\n"
             "except StackSSHError as exc:\n    print('REFUSED', exc)\n")


@pytest.mark.parametrize('case', ['pinned', 'unknown', 'changed'])
def test_the_proxy_tools_refuse_an_unknown_or_changed_host_key(lab, case):
    """The drain count, wazo-mode and the HA check connect through module_utils/stack_ssh.py on the proxy: with the
    pinned key it connects; a stack whose key is not known, or is another key, is refused (no "0 calls" from a
    machine in the middle)."""
    target = lab.address('primary')
    other_key = lab.ssh('secondary', 'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub').stdout.strip()
    files = {'pinned': None, 'unknown': '/dev/null', 'changed': '/tmp/wazo-mm-test-known-hosts'}
    lab.ssh('proxy', "printf '%%s %%s\\n' %s '%s' > /tmp/wazo-mm-test-known-hosts" % (target, other_key))
    try:
        out = lab.ssh('proxy', "python3 -c %s" % shlex.quote(STACK_SSH % (target, files[case]))).stdout.strip()
    finally:
        lab.ssh('proxy', 'rm -f /tmp/wazo-mm-test-known-hosts')
    if case == 'pinned':
        assert out == "(0, '', '')", out
    else:
        assert out.startswith('REFUSED') and target in out, out


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
