# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""agentd: the reconciliation plan (table-driven) and the client against the stand-in's APIs over real TLS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import agentd
from ansible_collections.wazo.maintenance_mode.tests.unit.plugins.agent_standin import (
    ADDRESSES,
    SYNC_PASSWORD,
    SYNC_USER,
    make_ca,
)


def agent(number, ext=None, ctx='default', tenant='t1'):
    return {'number': number, 'tenant_uuid': tenant, 'logged': ext is not None, 'extension': ext,
            'context': ctx if ext else None}


@pytest.mark.parametrize('source, destination, wanted', [
    ([agent('1001', '1001')], [agent('1001')], [('login', '1001')]),
    ([agent('1001')], [agent('1001', '1001')], [('logoff', '1001')]),
    ([agent('1001', '1002')], [agent('1001', '1001')], [('relog', '1001')]),
    ([agent('1001', '1001')], [agent('1001', '1001')], []),
    ([agent('1001'), agent('1002')], [agent('1001'), agent('1002')], []),
    # logoffs first: 1002 frees 1005 on the destination before 1001 takes it
    ([agent('1001', '1005'), agent('1002')], [agent('1001'), agent('1002', '1005')],
     [('logoff', '1002'), ('login', '1001')]),
    # same number in another tenant is another agent
    ([agent('1001', '1001', tenant='t2')], [agent('1001', tenant='t1'), agent('1001', tenant='t2')],
     [('login', '1001')]),
])
def test_plan(source, destination, wanted):
    got = agentd.plan(source, destination)
    assert [(a['action'], a['number']) for a in got['actions']] == wanted
    assert got['missing'] == []


def test_plan_missing_agent_is_reported_not_acted_on():
    got = agentd.plan([agent('1001', '1001'), agent('1009', '1009')], [agent('1001', '1001')])
    assert got['actions'] == []
    assert got['missing'] == [{'tenant_uuid': 't1', 'number': '1009', 'on': 'source'}]


def test_describe():
    assert agentd.describe({'action': 'login', 'number': '1001', 'extension': '1001', 'context': 'default'}) == \
        'login 1001 on 1001@default'
    assert agentd.describe({'action': 'logoff', 'number': '1002', 'was': '1002@default'}) == \
        'logoff 1002 (was on 1002@default)'


def client(stacks, stack, user=SYNC_USER, password=SYNC_PASSWORD, **kw):
    args = dict(port=stacks.port, ca_file=stacks.ca, timeout=3)
    args.update(kw)
    return agentd.Agentd(stack, ADDRESSES[stack], user, password, **args)


def test_reconcile_over_tls(stacks):
    stacks.set_logins('primary', {'1001': ('1001', 'default'), '1002': ('1002', 'default')})
    stacks.set_logins('secondary', {'1002': ('1009', 'default'), '1003': ('1003', 'default')})
    logs = []
    res = agentd.reconcile(client(stacks, 'primary'), client(stacks, 'secondary'), log=logs.append)
    assert sorted((a['action'], a['number'], a['ok']) for a in res['actions']) == [
        ('login', '1001', True), ('logoff', '1003', True), ('relog', '1002', True)]
    wanted = {'1001': ('1001', 'default'), '1002': ('1002', 'default')}
    assert stacks.logins('secondary') == stacks.logins('primary') == wanted
    assert len(logs) == 3 and res['failed'] == []
    # a second pass has nothing to do
    assert agentd.reconcile(client(stacks, 'primary'), client(stacks, 'secondary'))['actions'] == []


def test_check_mode_changes_nothing(stacks):
    stacks.set_logins('primary', {'1001': ('1001', 'default')})
    stacks.set_logins('secondary', {})
    res = agentd.reconcile(client(stacks, 'primary'), client(stacks, 'secondary'), check=True)
    assert [a['action'] for a in res['actions']] == ['login']
    assert stacks.logins('secondary') == {}


def test_certificate_of_another_ca_is_refused(stacks, tmp_path):
    other = make_ca(str(tmp_path), 'other')
    with pytest.raises(agentd.AgentdError) as exc:
        client(stacks, 'primary', ca_file=other).agents()
    assert 'TLS' in str(exc.value) and 'CERTIFICATE_VERIFY_FAILED' in str(exc.value)
    # verification off is possible, and only by asking for it
    assert len(client(stacks, 'primary', ca_file=other, verify=False).agents()) == 3


def test_wrong_password_and_missing_acl(stacks):
    with pytest.raises(agentd.AgentdError) as exc:
        client(stacks, 'primary', password='nope').agents()
    assert exc.value.status == 401 and 'wazo-auth' in str(exc.value)
    # a user without the login ACL reads but cannot log in: agentd answers 403
    c = client(stacks, 'primary', user='reader', password='r')
    assert len(c.agents()) == 3
    with pytest.raises(agentd.AgentdError) as exc:
        c.login({'number': '1001', 'tenant_uuid': None}, '1001', 'default')
    assert exc.value.status == 403


def test_agentd_down_is_an_error_naming_the_stack(stacks):
    stacks.stop('secondary', 'agentd')
    with pytest.raises(agentd.AgentdError) as exc:
        agentd.reconcile(client(stacks, 'primary'), client(stacks, 'secondary'))
    assert exc.value.stack == 'secondary' and exc.value.status == 502


def test_expired_token_is_renewed(stacks):
    c = client(stacks, 'primary')
    c.agents()
    c.token = 'not-a-token'
    assert len(c.agents()) == 3
