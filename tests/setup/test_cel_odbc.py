# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the cel_odbc role: from each stack, isql with the rendered DSN connects to the other
stack's database, and a CEL row inserted through it appears in the peer's cel table (read with psql).
Also: the second run changes nothing, the password is never printed, the files and modes are right.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_cel_odbc.py

Needs the ha role's listen_addresses (or any listen_addresses = '*') on the stacks for the TCP connection;
the test says so when the peer refuses the connection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import configparser
import os
import re
import shlex
import subprocess
import tempfile
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- lab helpers (kept in this file: tests/setup has no shared helper of this role) ------------------
class Lab(object):
    def __init__(self, path):
        self.path = os.path.abspath(path)
        with open(self.path) as fh:
            inv = yaml.safe_load(fh)
        self.vars = inv['all'].get('vars', {})
        self.hosts = {}
        for group, body in inv['all']['children'].items():
            for name, hv in (body.get('hosts') or {}).items():
                if hv and 'ansible_host' in hv:
                    self.hosts[group] = hv['ansible_host']
        gv = os.path.join(os.path.dirname(self.path), 'group_vars', 'all')
        self.group_vars = {}
        if os.path.isdir(gv):
            for f in sorted(os.listdir(gv)):
                if f.endswith('.yml'):
                    with open(os.path.join(gv, f)) as fh:
                        self.group_vars.update(yaml.safe_load(fh) or {})
        self.ssh_base = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
                         '-i', self.vars['ansible_ssh_private_key_file']] + \
            shlex.split(self.vars.get('ansible_ssh_common_args', '')) + ['-l', self.vars.get('ansible_user', 'root')]

    def ssh(self, group, cmd, check=True, timeout=300):
        p = subprocess.run(self.ssh_base + [self.hosts[group], cmd], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError('%s: %s -> rc %d\n%s\n%s' % (group, cmd, p.returncode, p.stdout, p.stderr))
        return p

    def playbook(self, text, extra_args=(), background=False):
        fd, path = tempfile.mkstemp(prefix='wazo-mm-test-', suffix='.yml')
        with os.fdopen(fd, 'w') as fh:
            fh.write(text)
        cmd = [os.path.join(ROOT, '.venv', 'bin', 'ansible-playbook'), '-i', self.path, path] + list(extra_args)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
        if background:
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
        return p.returncode, p.stdout + p.stderr


def recap(output):
    """{host: {'changed': n, 'failed': n, ...}} from the PLAY RECAP."""
    out = {}
    for m in re.finditer(r'^(\S+)\s+:\s+(ok=.*)$', output, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', m.group(2))}
    return out


@pytest.fixture(scope='module')
def lab():
    path = os.environ.get('LAB_INVENTORY')
    if not path:
        pytest.skip('no lab: set LAB_INVENTORY to a lab inventory (make lab-up writes .lab[-NAME]/inventory.yml)')
    if not os.path.exists(path):
        pytest.skip('no lab: %s does not exist (make lab-up)' % path)
    lab = Lab(path)
    for g in ('proxy', 'primary', 'secondary'):
        if g not in lab.hosts:
            pytest.skip('no lab: group %s missing in %s' % (g, path))
        try:
            if lab.ssh(g, 'true', check=False, timeout=20).returncode != 0:
                pytest.skip('no lab: %s (%s) unreachable' % (g, lab.hosts[g]))
        except subprocess.TimeoutExpired:
            pytest.skip('no lab: %s (%s) unreachable' % (g, lab.hosts[g]))
    if lab.ssh('primary', 'id asterisk', check=False).returncode != 0:
        pytest.skip('no Wazo stand-in on the lab stacks (make standin)')
    return lab



ROLE_PLAY = """
- name: CEL replication
  hosts: primary:secondary
  roles:
    - role: wazo.maintenance_mode.cel_odbc
"""

PEER = {'primary': 'secondary', 'secondary': 'primary'}


@pytest.fixture(scope='module')
def converged(lab):
    """Run the role twice; return (first output, second output)."""
    rc1, out1 = lab.playbook(ROLE_PLAY, ['--diff'])
    assert rc1 == 0, out1[-4000:]
    rc2, out2 = lab.playbook(ROLE_PLAY, ['--diff'])
    assert rc2 == 0, out2[-4000:]
    return out1, out2


def password(lab):
    return lab.group_vars['wazo_mm_odbc_password']


def test_second_run_changes_nothing(lab, converged):
    r = recap(converged[1])
    assert set(r) == {'primary', 'secondary'} and all(v['changed'] == 0 for v in r.values()), r


def test_password_never_printed(lab, converged):
    for out in converged:
        assert password(lab) not in out


def test_files_per_side(lab, converged):
    for g, peer in PEER.items():
        ini = configparser.ConfigParser(interpolation=None)
        ini.optionxform = str
        ini.read_string(lab.ssh(g, 'cat /etc/odbc.ini').stdout)
        assert ini[peer]['Servername'] == lab.hosts[peer]
        assert ini[peer]['Database'] == 'asterisk'
        driver = ini[peer]['Driver']
        assert '[%s]' % driver in lab.ssh(g, 'cat /etc/odbcinst.ini').stdout, 'driver %s not installed' % driver
        res = lab.ssh(g, 'stat -c "%a %U %G" /etc/asterisk/res_odbc.d/02-active-active.conf; '
                         'cat /etc/asterisk/res_odbc.d/02-active-active.conf').stdout
        assert res.splitlines()[0] == '640 root asterisk'
        assert '[%s]' % peer in res and 'dsn => %s' % peer in res and 'username => asterisk' in res
        cel = lab.ssh(g, 'cat /etc/asterisk/cel_odbc.d/02-active-active.conf').stdout
        assert '[%s]' % peer in cel and 'connection = %s' % peer in cel and 'table = cel' in cel
        hba = lab.ssh(g, "sudo -u postgres psql -tAc 'SHOW hba_file' | xargs cat").stdout
        m = re.search(r'^hostnossl\s+asterisk\s+asterisk\s+%s/32\s+(\S+)' % re.escape(lab.hosts[peer]), hba, re.M)
        assert m, hba
        enc = lab.ssh(g, "sudo -u postgres psql -tAc 'SHOW password_encryption'").stdout.strip()
        assert m.group(1) in ('md5', enc)
        log = lab.ssh(g, 'cat /var/log/asterisk/standin-commands.log', check=False).stdout
        assert 'module reload res_odbc.so' in log and 'module reload cel_odbc.so' in log, log


def rendered_password(lab, g):
    res = lab.ssh(g, 'cat /etc/asterisk/res_odbc.d/02-active-active.conf').stdout
    return re.search(r'^password => (.*)$', res, re.M).group(1).replace('\\;', ';')


@pytest.mark.parametrize('side', ['primary', 'secondary'])
def test_isql_to_peer_and_cel_row_lands_there(lab, converged, side):
    peer = PEER[side]
    pw = rendered_password(lab, side)
    lab.ssh(side, 'command -v isql >/dev/null')
    probe = lab.ssh(side, 'echo "SELECT 1" | isql -v -b %s asterisk %s' % (peer, shlex.quote(pw)), check=False)
    if probe.returncode != 0 and 'Connection refused' in probe.stdout + probe.stderr:
        pytest.fail('%s refuses TCP connections from %s: listen_addresses (ha role) not set on the %s'
                    % (peer, side, peer))
    if probe.returncode != 0 and 'password authentication failed' in probe.stdout + probe.stderr:
        pytest.fail('the %s rejects the password: wazo_mm_odbc_password must be the password of its asterisk role'
                    % peer)
    assert probe.returncode == 0, (probe.stdout, probe.stderr)
    tag = 'wazo-mm-test-%s-%s' % (side, uuid.uuid4().hex[:8])
    sql = ("INSERT INTO cel (eventtype, eventtime, cid_name, uniqueid, linkedid, userdeftype) "
           "VALUES ('CHAN_START', now(), '%s', '%s', '%s', '')" % (tag, tag[-8:], tag[-8:]))
    p = lab.ssh(side, 'echo %s | isql -v -b %s asterisk %s' % (shlex.quote(sql), peer, shlex.quote(pw)), check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    found = lab.ssh(peer, "sudo -u postgres psql -d asterisk -tAc \"SELECT count(*) FROM cel WHERE cid_name = '%s'\""
                    % tag).stdout.strip()
    assert found == '1', 'the CEL row inserted from %s through ODBC is not in the %s cel table' % (side, peer)
    print('%s -> %s: isql connected, CEL row %s found on the %s' % (side, peer, tag, peer))
