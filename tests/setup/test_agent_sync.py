# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Agent logins follow the traffic, on the lab (wazo-agent-sync on the proxy, the stand-in's wazo-auth, wazo-agentd
and HTTPS front on the stacks, certificates of the lab's CA verified).

Proofs, in one sequence (two switch.yml runs, no upgrade):
- a login and a logoff made on the primary are mirrored on the secondary by the daemon (journal lines);
- with the daemon stopped, an agent logged in on the primary is logged in on the secondary by switch.yml's
  reconciliation, before its switch to maintenance;
- during maintenance a login on the secondary is mirrored on the primary;
- with the daemon stopped, an agent who moved to another extension on the secondary is on it on the primary after
  the switch back (reconciled before it);
- the secondary's agentd down: the daemon reports it and retries with a growing delay, then catches up; the
  agent_reconcile module retries, then fails naming the stack (or warns with fail_on_error=false).

    LAB_INVENTORY=$PWD/.lab-NAME/inventory.yml .venv/bin/pytest -q tests/setup/test_agent_sync.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request

import pytest

from conftest import labtools

ADMIN = ('lab-admin', 'lab-admin-secret')   # the stand-in's supervisor user (tests/agents/standin.yml)


class Api:
    """The stacks' agentd through their HTTPS front, as a supervisor, with the lab CA."""

    def __init__(self, lab):
        self.lab = lab
        self.ctx = ssl.create_default_context(cafile=os.path.join(os.path.dirname(lab.path), 'agents-ca', 'ca.crt'))
        self.tokens = {}

    def call(self, stack, method, path, body=None, auth=None):
        url = 'https://%s%s' % (self.lab.address(stack), path)
        headers = {'Content-Type': 'application/json'}
        if auth:
            headers['Authorization'] = 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode()
        else:
            headers['X-Auth-Token'] = self.token(stack)
        req = urllib.request.Request(url, None if body is None else json.dumps(body).encode(), headers, method=method)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 401 or auth or stack not in self.tokens:
                raise
            del self.tokens[stack]   # wazo-auth restarted (an upgrade): a new token
            return self.call(stack, method, path, body)
        return json.loads(raw) if raw else None

    def token(self, stack):
        if stack not in self.tokens:
            self.tokens[stack] = self.call(stack, 'POST', '/api/auth/0.1/token', {'expiration': 600},
                                           auth=ADMIN)['data']['token']
        return self.tokens[stack]

    def logins(self, stack):
        return dict((a['number'], '%s@%s' % (a['extension'], a['context']))
                    for a in self.call(stack, 'GET', '/api/agentd/1.0/agents') if a['logged'])

    def logins_when_up(self, stack):
        """logins(), None while the stack's agentd is (re)starting."""
        try:
            return self.logins(stack)
        except OSError:
            return None

    def login(self, stack, number, exten):
        self.call(stack, 'POST', '/api/agentd/1.0/agents/by-number/%s/login' % number,
                  {'extension': exten, 'context': 'default'})

    def logoff(self, stack, number):
        self.call(stack, 'POST', '/api/agentd/1.0/agents/by-number/%s/logoff' % number)


def journal(lab, since):
    return lab.ssh('proxy', "journalctl -u wazo-agent-sync -o cat --no-pager --since '@%d'" % int(since)).stdout


def switch(lab, mode):
    play = labtools.TOPOLOGY_PLAY + """
- name: Switch
  hosts: proxy
  gather_facts: false
  roles:
    - role: wazo.maintenance_mode.switch
      vars:
        wazo_mm_switch_mode: %s
        wazo_mm_switch_drain_deadline: 60s
""" % mode
    rc, out = lab.play(play)
    assert rc == 0, out[-4000:]
    return ' '.join(out.split())   # messages wrapped by the default callback, joined again


@pytest.fixture
def api(lab):
    """Mode normal, no lock, nobody logged, the daemon and both agentd running; the same after the test."""
    def reset():
        lab.ssh('proxy', 'wazo-mode normal --no-wait --force')
        for stack in ('primary', 'secondary'):
            lab.ssh(stack, 'systemctl start wazo-agentd')
        lab.ssh('proxy', 'systemctl reset-failed wazo-agent-sync; systemctl start wazo-agent-sync')
        handle = Api(lab)
        assert labtools.wait_for(lambda: None not in (handle.logins_when_up('primary'),
                                                      handle.logins_when_up('secondary')), 20)
        for stack in ('primary', 'secondary'):
            for number in handle.logins(stack):
                handle.logoff(stack, number)
        return handle
    yield reset()
    reset()


def test_logins_follow_the_traffic(lab, api):
    since = time.time() - 1
    # the daemon mirrors a login and a logoff made on the traffic stack
    api.login('primary', '1001', '1001')
    api.login('primary', '1002', '1002')
    assert labtools.wait_for(lambda: api.logins('secondary') == {'1001': '1001@default', '1002': '1002@default'}, 15), \
        api.logins('secondary')
    api.logoff('primary', '1002')
    assert labtools.wait_for(lambda: api.logins('secondary') == {'1001': '1001@default'}, 15), api.logins('secondary')
    lines = journal(lab, since)
    assert 'mirror to the secondary: login 1001 on 1001@default -> OK' in lines, lines
    assert 'mirror to the secondary: logoff 1002 (was on 1002@default) -> OK' in lines, lines

    # the switch to maintenance reconciles before it switches (the daemon stopped: only the switch can do it)
    lab.ssh('proxy', 'systemctl stop wazo-agent-sync')
    api.login('primary', '1003', '1003')
    assert '1003' not in api.logins('secondary')
    out = switch(lab, 'maintenance')
    said = 'Agents (before the switch to maintenance), primary -> secondary: login 1003 on 1003@default'
    assert said in out, out[-4000:]
    assert out.index(said) < out.index('TASK [wazo.maintenance_mode.switch : Switch to maintenance]')
    assert api.logins('secondary') == {'1001': '1001@default', '1003': '1003@default'}
    assert lab.route_mode()['mode'] == 'maintenance'

    # during the window: a login on the secondary (traffic) is mirrored on the primary
    lab.ssh('proxy', 'systemctl start wazo-agent-sync')
    api.login('secondary', '1002', '1002')
    assert labtools.wait_for(lambda: api.logins('primary').get('1002') == '1002@default', 15), api.logins('primary')

    # the switch back: the primary gets the secondary's logins before the switch (daemon stopped again)
    lab.ssh('proxy', 'systemctl stop wazo-agent-sync')
    api.logoff('secondary', '1001')
    api.login('secondary', '1001', '1011')
    out = switch(lab, 'normal')
    said = 'Agents (before the switch to normal), secondary -> primary: relog 1001 on 1011@default (was on 1001@default)'
    assert said in out, out[-4000:]
    assert out.index(said) < out.index('TASK [wazo.maintenance_mode.switch : Switch to normal]')
    wanted = {'1001': '1011@default', '1002': '1002@default', '1003': '1003@default'}
    assert api.logins('primary') == wanted and api.logins('secondary') == wanted
    assert lab.route_mode()['mode'] == 'normal'


def test_agentd_down_is_reported_and_retried(lab, api):
    api.login('primary', '1001', '1001')
    assert labtools.wait_for(lambda: '1001' in api.logins('secondary'), 15)
    since = time.time() - 1
    lab.ssh('secondary', 'systemctl stop wazo-agentd')
    api.logoff('primary', '1001')
    # reported, then retried with a doubling delay (2 s, 4 s, ...)
    assert labtools.wait_for(lambda: journal(lab, since).count('agentd of the secondary unreachable') >= 2, 20), \
        journal(lab, since)
    lines = journal(lab, since)
    assert 'HTTP 502' in lines and 'retry in 2 s' in lines and 'retry in 4 s' in lines, lines

    # the module: retried, then the task fails naming the stack; with fail_on_error=false a warning
    play = """
- name: Reconcile
  hosts: proxy
  gather_facts: false
  tasks:
    - name: Reconcile from the primary
      wazo.maintenance_mode.agent_reconcile:
        source: primary
        retries: 2
        delay: 1
        fail_on_error: %s
"""
    rc, out = lab.play(play % 'true')
    assert rc != 0 and 'agentd of the secondary unreachable after 2 attempt(s)' in ' '.join(out.split()), out[-3000:]
    rc, out = lab.play(play % 'false')
    assert rc == 0 and '[WARNING]: agent logins not reconciled (primary -> secondary)' in ' '.join(out.split()), \
        out[-3000:]

    lab.ssh('secondary', 'systemctl start wazo-agentd')
    assert labtools.wait_for(lambda: api.logins_when_up('secondary') == {}, 70), api.logins_when_up('secondary')
    assert 'agentd of the secondary reachable again' in journal(lab, since)


def test_hand_over_after_a_route_change_made_elsewhere(lab, api):
    """The route changed by wazo-mode (as the HA check's failover and failback do) while the daemon is stopped: the
    restarted daemon first copies the previous traffic stack's logins onto the new one, then mirrors the other way."""
    lab.ssh('proxy', 'wazo-mode maintenance --no-wait')
    assert labtools.wait_for(lambda: '"source": "secondary"' in lab.ssh(
        'proxy', 'cat /var/lib/wazo-maintenance/agent-sync.json', check=False).stdout, 15)
    lab.ssh('proxy', 'systemctl stop wazo-agent-sync')
    api.login('secondary', '1002', '1002')          # during the "failover", on the stack carrying traffic
    lab.ssh('proxy', 'wazo-mode normal --no-wait --force')
    since = time.time() - 1
    lab.ssh('proxy', 'systemctl start wazo-agent-sync')
    # handed over to the primary, not logged off the secondary
    assert labtools.wait_for(lambda: api.logins('primary') == {'1002': '1002@default'}, 15), api.logins('primary')
    time.sleep(3)
    assert api.logins('secondary') == {'1002': '1002@default'}
    lines = journal(lab, since)
    assert 'route mode changed: traffic now on the primary (was the secondary)' in lines, lines
    assert 'mirror to the primary: login 1002 on 1002@default -> OK' in lines, lines
