# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers for tests that run against the lab (`make lab-up`): read the inventory, run commands
on the hosts over SSH exactly as Ansible reaches them, run playbooks, drive SIPp from the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


def inventory_path():
    """The lab inventory: $LAB_INVENTORY, else .lab/inventory.yml."""
    return os.path.abspath(os.environ.get('LAB_INVENTORY') or os.path.join(ROOT, '.lab', 'inventory.yml'))


class Lab(object):
    """One lab: host addresses per group, SSH, ansible-playbook."""

    def __init__(self, path=None):
        self.path = path or inventory_path()
        with open(self.path) as handle:
            inv = yaml.safe_load(handle)
        self.vars = inv['all'].get('vars', {})
        self.hosts = {}
        for group, body in inv['all']['children'].items():
            for _name, hostvars in (body.get('hosts') or {}).items():
                if hostvars and 'ansible_host' in hostvars:
                    self.hosts[group] = hostvars['ansible_host']
        self.ssh_base = (['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5',
                          '-i', self.vars['ansible_ssh_private_key_file']]
                         + shlex.split(self.vars.get('ansible_ssh_common_args', ''))
                         + ['-l', self.vars.get('ansible_user', 'root')])

    def ssh(self, group, cmd, check=True, timeout=300):
        """Run a shell command on the host of `group`; returns the CompletedProcess."""
        proc = subprocess.run(self.ssh_base + [self.hosts[group], cmd], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('%s: %s -> rc %d\n%s\n%s' % (group, cmd, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def playbook(self, playbook, *args, inventory=None, check=True, timeout=1800, env=None):
        """Run ansible-playbook from the repo root; returns the CompletedProcess."""
        cmd = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory or self.path, playbook] + list(args)
        full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                        PATH=VENV_BIN + os.pathsep + os.environ.get('PATH', ''), **(env or {}))
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env,
                              check=False)
        if check and proc.returncode != 0:
            raise AssertionError('%s failed (rc %d)\n%s\n%s' % (' '.join(cmd), proc.returncode,
                                                                 proc.stdout[-6000:], proc.stderr[-3000:]))
        return proc

    def channels(self, group):
        """`asterisk -rx 'core show channels count'` on a stack, parsed."""
        out = self.ssh(group, "asterisk -rx 'core show channels count'").stdout
        counts = {}
        for line in out.splitlines():
            words = line.split()
            if 'active channel' in line:
                counts['channels'] = int(words[0])
            elif 'active call' in line:
                counts['calls'] = int(words[0])
            elif 'processed' in line:
                counts['processed'] = int(words[0])
        return counts

    def route_mode(self):
        """The proxy's route mode as wazo-mode prints it (JSON)."""
        return json.loads(self.ssh('proxy', 'wazo-mode status --json').stdout)


def recap(stdout):
    """{host: {'ok': n, 'changed': n, 'failed': n, ...}} from an ansible-playbook PLAY RECAP."""
    out = {}
    in_recap = False
    for line in stdout.splitlines():
        if line.startswith('PLAY RECAP'):
            in_recap = True
            continue
        if in_recap and ':' in line and '=' in line:
            host, _, rest = line.partition(':')
            out[host.strip()] = {k: int(v) for k, v in (item.split('=') for item in rest.split())}
    return out


def sipp_call(target, local_ip, duration_ms=1000, calls=1, rate=1, service='1000', timeout=60, port=5071):
    """Place `calls` calls through `target` with the route-following UAC; returns (ok, failed, output)."""
    scenario = os.path.join(ROOT, 'tests', 'standin', 'sipp', 'uac_rr.xml')
    cmd = ['sipp', '-sf', scenario, '%s:5060' % target, '-i', local_ip, '-p', str(port), '-s', service,
           '-d', str(duration_ms), '-r', str(rate), '-m', str(calls), '-timeout', '%ds' % timeout,
           '-timeout_error', '-nostdin', '-nd', '-trace_screen', '-screen_file', '/dev/stdout']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, check=False)
    ok = failed = None
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split('|')]
        if cells[0] == 'Successful call' and len(cells) >= 3:
            ok = int(cells[2])
        elif cells[0] == 'Failed call' and len(cells) >= 3:
            failed = int(cells[2])
    return ok, failed, proc.stdout + proc.stderr


def host_ip_towards(target):
    """The host's source address on the route to target (the lab bridge)."""
    out = subprocess.run(['ip', '-o', 'route', 'get', target], capture_output=True, text=True, check=True).stdout
    words = out.split()
    return words[words.index('src') + 1] if 'src' in words else '127.0.0.1'
