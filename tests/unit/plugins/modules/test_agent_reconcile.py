# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""agent_reconcile against two stand-in stacks on loopback (real TLS): changes, check mode, diff, retries."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.modules import agent_reconcile

D = ('1001', 'default')


@pytest.fixture
def stacks(stacks, host):  # noqa: F811  (the shared fixture, plus exit_json/fail_json/warn captured: conftest)
    stacks.host = host
    return stacks


def args(stacks, tmp_path, **kw):
    a = dict(source='primary', config=stacks.config(tmp_path / 'agent-sync.conf'), retries=2, delay=0.1)
    a.update(kw)
    return a


def test_reconcile_changes_and_reports(stacks, tmp_path, run_module):
    stacks.set_logins('primary', {'1001': D})
    stacks.set_logins('secondary', {'1002': ('1002', 'default')})
    res = run_module(agent_reconcile, args(stacks, tmp_path), diff=True)
    assert res['changed'] is True and res['destination'] == 'secondary' and res['error'] == ''
    assert res['agents'] == ['logoff 1002 (was on 1002@default)', 'login 1001 on 1001@default']
    assert stacks.logins('secondary') == {'1001': D}
    assert res['diff']['before'] == 'tenant-1/1002 1002@default\n' and res['diff']['after'] == 'tenant-1/1001 1001@default\n'
    again = run_module(agent_reconcile, args(stacks, tmp_path))
    assert again['changed'] is False and again['agents'] == []


def test_check_mode(stacks, tmp_path, run_module):
    stacks.set_logins('secondary', {'1001': D})
    res = run_module(agent_reconcile, args(stacks, tmp_path, source='primary'), check_mode=True)
    assert res['changed'] is True and res['agents'] == ['logoff 1001 (was on 1001@default)']
    assert stacks.logins('secondary') == {'1001': D}


def test_stack_down_retried_then_failed_or_warned(stacks, tmp_path, run_module):
    stacks.stop('secondary', 'agentd')
    res = run_module(agent_reconcile, args(stacks, tmp_path))
    assert res['failed'] and res['attempts'] == 2
    assert 'agentd of the secondary unreachable after 2 attempt(s)' in res['msg'] and 'HTTP 502' in res['msg']
    res = run_module(agent_reconcile, args(stacks, tmp_path, fail_on_error=False))
    assert not res.get('failed') and res['error'] and stacks.host.warnings


def test_missing_config_is_refused(tmp_path, run_module, host):
    res = run_module(agent_reconcile, {'source': 'primary', 'config': str(tmp_path / 'none.conf')})
    assert res['failed'] and 'is the agent_sync role applied' in res['msg']
