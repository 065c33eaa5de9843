# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two Wazo stacks' agent APIs on loopback (tests/standin/files/wazo_agentd.py: wazo-auth, wazo-agentd, the HTTPS
front), with a CA and certificates made by openssl for 127.0.0.1 (primary) and 127.0.0.2 (secondary)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import subprocess
import sys
import time

STANDIN = os.path.join(os.path.dirname(__file__), '..', '..', 'standin', 'files', 'wazo_agentd.py')
ADDRESSES = {'primary': '127.0.0.1', 'secondary': '127.0.0.2'}
SYNC_USER, SYNC_PASSWORD = 'wazo-mm-agent-sync', 'unit-secret'
SYNC_ACL = ['agentd.agents.read', 'agentd.agents.by-number.*.login.create', 'agentd.agents.by-number.*.logoff.create']


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def openssl(*args):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True)


def make_ca(d, name='ca'):
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=unit %s' % name,
            '-keyout', os.path.join(d, name + '.key'), '-out', os.path.join(d, name + '.crt'))
    return os.path.join(d, name + '.crt')


def make_cert(d, name, address, ca='ca'):
    ext = os.path.join(d, name + '.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName=IP:%s\n' % address)
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=%s' % name, '-keyout', os.path.join(d, name + '.key'),
            '-out', os.path.join(d, name + '.csr'))
    openssl('x509', '-req', '-in', os.path.join(d, name + '.csr'), '-CA', os.path.join(d, ca + '.crt'),
            '-CAkey', os.path.join(d, ca + '.key'), '-CAcreateserial', '-days', '2', '-extfile', ext,
            '-out', os.path.join(d, name + '.crt'))


def wait_port(address, port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((address, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('nothing listens on %s:%d' % (address, port))


class Stacks:
    """``start()`` both stacks; ``stop(stack, 'agentd')`` one process; ``agents(stack)`` their state file."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.port = free_port()
        self.ca = make_ca(self.tmp)
        self.procs = {}
        self.env = {}
        users = {SYNC_USER: {'password': SYNC_PASSWORD, 'acl': SYNC_ACL}, 'admin': {'password': 'a', 'acl': ['agentd.#']},
                 'reader': {'password': 'r', 'acl': ['agentd.agents.read']}}
        with open(os.path.join(self.tmp, 'users.json'), 'w') as f:
            json.dump(users, f)
        for stack, address in ADDRESSES.items():
            make_cert(self.tmp, stack, address)
            self.env[stack] = dict(
                os.environ,
                WAZO_STANDIN_AUTH_USERS=os.path.join(self.tmp, 'users.json'),
                WAZO_STANDIN_AGENTS=os.path.join(self.tmp, stack + '-agents.json'),
                WAZO_STANDIN_API_LOG=os.path.join(self.tmp, stack + '-api.log'),
                WAZO_STANDIN_HTTPS_CERT=os.path.join(self.tmp, stack + '.crt'),
                WAZO_STANDIN_HTTPS_KEY=os.path.join(self.tmp, stack + '.key'),
                WAZO_STANDIN_AUTH_PORT=str(free_port()),
                WAZO_STANDIN_AGENTD_PORT=str(free_port()),
                WAZO_STANDIN_HTTPS_PORT=str(self.port),
                WAZO_STANDIN_HTTPS_BIND=address,
                XIVO_UUID='uuid-' + stack)

    def start(self, stack=None, roles=('auth', 'agentd', 'nginx')):
        for s in ([stack] if stack else list(ADDRESSES)):
            for role in roles:
                self.procs[(s, role)] = subprocess.Popen([sys.executable, STANDIN, role], env=self.env[s])
            for role in roles:
                if role == 'nginx':
                    wait_port(ADDRESSES[s], self.port)
                else:
                    wait_port('127.0.0.1', int(self.env[s]['WAZO_STANDIN_%s_PORT' % role.upper()]))
        return self

    def stop(self, stack=None, role=None):
        for key in list(self.procs):
            if (stack is None or key[0] == stack) and (role is None or key[1] == role):
                proc = self.procs.pop(key)
                proc.terminate()
                proc.wait(5)

    def state(self, stack):
        try:
            with open(self.env[stack]['WAZO_STANDIN_AGENTS']) as f:
                return json.load(f)
        except IOError:
            return None

    def set_logins(self, stack, logins):
        """``{'1001': ('1001', 'default'), ...}``: exactly these agents logged (written in the state file)."""
        agents = [{'id': i, 'tenant_uuid': 'tenant-1', 'number': str(1000 + i), 'logged': False, 'paused': False,
                   'paused_reason': None, 'extension': None, 'context': None, 'state_interface': None}
                  for i in (1, 2, 3)]
        for a in agents:
            if a['number'] in logins:
                a.update(logged=True, extension=logins[a['number']][0], context=logins[a['number']][1])
        with open(self.env[stack]['WAZO_STANDIN_AGENTS'], 'w') as f:
            json.dump(agents, f)

    def logins(self, stack):
        return dict((a['number'], (a['extension'], a['context'])) for a in self.state(stack) or [] if a['logged'])

    def config(self, path, **kw):
        values = dict(primary=ADDRESSES['primary'], secondary=ADDRESSES['secondary'], port=self.port,
                      username=SYNC_USER, password=SYNC_PASSWORD, ca_file=self.ca, verify='true', timeout=3,
                      interval=0.2, retry_initial=0.5, retry_max=2, state_dir=os.path.join(self.tmp, 'state'))
        values.update(kw)
        if not os.path.isdir(values['state_dir']):
            os.makedirs(values['state_dir'])
        with open(path, 'w') as f:
            f.write('[agent-sync]\n' + ''.join('%s = %s\n' % kv for kv in values.items()))
        return str(path)
