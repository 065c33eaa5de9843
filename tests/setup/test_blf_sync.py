# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab proof of the blf_sync role: both rendered pjsip.d/06-active-active.conf parsed, and the cross references
checked: what one stack publishes as is what the other accepts; second run changes nothing; reload requested.

    LAB_INVENTORY=.lab-NAME/inventory.yml .venv/bin/pytest -v tests/setup/test_blf_sync.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shlex
import subprocess
import tempfile

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
- name: BLF and MWI synchronization
  hosts: primary:secondary
  roles:
    - role: wazo.maintenance_mode.blf_sync
"""
CONF = '/etc/asterisk/pjsip.d/06-active-active.conf'
PEER = {'primary': 'secondary', 'secondary': 'primary'}


@pytest.fixture(scope='module')
def converged(lab):
    rc1, out1 = lab.playbook(ROLE_PLAY)
    assert rc1 == 0, out1[-4000:]
    rc2, out2 = lab.playbook(ROLE_PLAY)
    assert rc2 == 0, out2[-4000:]
    return out1, out2


def parse_pjsip(text):
    """[(name, {option: value})] in file order; Asterisk allows one name for objects of different types."""
    objs, cur = [], None
    for raw in text.splitlines():
        line = raw.split(';', 1)[0].strip()
        if not line:
            continue
        m = re.match(r'^\[([^\]]+)\]$', line)
        if m:
            cur = (m.group(1), {})
            objs.append(cur)
            continue
        k, v = [x.strip() for x in line.split('=', 1)]
        cur[1][k] = v
    return objs


def by_type(objs, t):
    return [(n, o) for n, o in objs if o.get('type') == t]


def test_second_run_changes_nothing(lab, converged):
    r = recap(converged[1])
    assert set(r) == {'primary', 'secondary'} and all(v['changed'] == 0 for v in r.values()), r


def test_cross_references(lab, converged):
    conf = {g: parse_pjsip(lab.ssh(g, 'cat %s' % CONF).stdout) for g in PEER}
    names = {}
    for g, objs in conf.items():
        assert sorted(o['type'] for _n, o in objs) == sorted(
            ['endpoint', 'outbound-publish', 'outbound-publish', 'inbound-publication', 'asterisk-publication'])
        (ep, _), = by_type(objs, 'endpoint')
        (inb, inbo), = by_type(objs, 'inbound-publication')
        (ap, apo), = by_type(objs, 'asterisk-publication')
        outs = dict((o['event'], (n, o)) for n, o in by_type(objs, 'outbound-publish'))
        assert set(outs) == {'asterisk-devicestate', 'asterisk-mwi'}
        # one peer name for all objects; the asterisk-publication references this side's outbound-publish
        assert ep == inb == ap
        assert apo['devicestate_publish'] == outs['asterisk-devicestate'][0]
        assert apo['mailboxstate_publish'] == outs['asterisk-mwi'][0]
        assert apo['device_state'] == 'yes' and apo['mailbox_state'] == 'yes'
        # accepted publications are mapped to the peer's name
        assert inbo['event_asterisk-devicestate'] == ep and inbo['event_asterisk-mwi'] == ep
        users = set()
        for _ev, (n, o) in outs.items():
            m = re.match(r'^sip:([^@]+)@(.+)$', o['server_uri'])
            assert m and m.group(2) == lab.hosts[PEER[g]], o['server_uri']
            users.add(m.group(1))
        assert len(users) == 1
        names[g] = dict(objects=ep, publishes_as=users.pop(), accepts=inbo['event_asterisk-devicestate'])
    for g, peer in PEER.items():
        # what g publishes as is what its peer accepts, and the peer's objects are named after g
        assert names[g]['publishes_as'] == names[peer]['accepts'] == names[peer]['objects'], names
        assert names[g]['publishes_as'] != names[peer]['publishes_as']
    # Asterisk's documented example: primary = instance1 (objects instance2), secondary = instance2
    assert names['primary'] == dict(objects='instance2', publishes_as='instance1', accepts='instance2')
    assert names['secondary'] == dict(objects='instance1', publishes_as='instance2', accepts='instance1')


def test_reload_requested(lab, converged):
    for g in PEER:
        log = lab.ssh(g, 'cat /var/log/asterisk/standin-commands.log', check=False).stdout
        assert 'module reload res_pjsip.so' in log, log
