# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack_health module with scripted SIP and SSH: passes when healthy, waits (bounded), fails naming the stack."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import stack_health as sh
from ansible_collections.wazo.maintenance_mode.plugins.module_utils.stack_ssh import StackSSHError
from ansible_collections.wazo.maintenance_mode.plugins.modules import stack_health

M = sh.MARK
HEALTHY = ('Checking services...\n\trunning\t\twazo-chatd\n\tstopped\t\twazo-provd\n%s services rc=1\n'
           '-P INPUT ACCEPT\n%s iptables rc=0\n%s nft rc=127\n' % (M, M, M))
DOWN = HEALTHY.replace('running\t\twazo-chatd', 'stopped\t\twazo-chatd')


def args(**kw):
    base = {'stack': 'secondary', 'address': '192.0.2.12', 'ignore_services': ['wazo-provd'], 'timeout': 0,
            'interval': 0.5}
    base.update(kw)
    return base


def script(monkeypatch, outputs, sip=(200, 'OK')):
    seen = []

    def ssh_run(host, command, **kw):
        seen.append(host)
        out = outputs[min(len(seen), len(outputs)) - 1]
        if isinstance(out, Exception):
            raise out
        return 0, out, ''
    monkeypatch.setattr(stack_health, 'ssh_run', ssh_run)
    monkeypatch.setattr(stack_health, 'ping', lambda *a, **kw: (sip[0], sip[1], 1, 0.01))
    monkeypatch.setattr(stack_health.time, 'sleep', lambda s: None)
    return seen


def test_healthy(monkeypatch, run_module, host):
    script(monkeypatch, [HEALTHY])
    res = run_module(stack_health, args())
    assert res['healthy'] and not res.get('failed') and res['changed'] is False and res['samples'] == 1


def test_unhealthy_names_the_stack_the_service_and_what_to_do(monkeypatch, run_module, host):
    script(monkeypatch, [DOWN])
    res = run_module(stack_health, args())
    assert res['failed'] and res['healthy'] is False
    assert res['msg'].startswith('secondary (192.0.2.12) is not healthy: wazo-service status: stopped (rc=1), '
                                 'wazo-chatd stopped. Fix: start the services')


def test_waits_until_healthy_within_the_timeout(monkeypatch, run_module, host):
    seen = script(monkeypatch, [DOWN, DOWN, HEALTHY])
    res = run_module(stack_health, args(timeout=30))
    assert res['healthy'] and len(seen) == 3


def test_ssh_failure_and_no_sip(monkeypatch, run_module, host):
    script(monkeypatch, [StackSSHError('ssh root@192.0.2.12:22: refused')], sip=(None, 'timeout'))
    res = run_module(stack_health, args())
    assert res['failed'] and 'no answer to SIP OPTIONS' in res['msg'] and 'cannot read its services' in res['msg']
