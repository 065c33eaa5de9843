# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.modules import active_calls

NOT_RUNNING = 'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n'


@pytest.mark.parametrize('check_mode', [False, True])
def test_counts(host, run_module, check_mode):
    host.handlers['asterisk'] = (0, '4 active channels\n2 active calls\n1342 calls processed\n', '')
    result = run_module(active_calls, {}, check_mode=check_mode)
    assert result['changed'] is False
    assert (result['channels'], result['calls'], result['processed']) == (4, 2, 1342)
    assert result['cmd'] == ['/usr/bin/asterisk', '-rx', 'core show channels count']
    argv, kwargs = host.calls[0]
    assert argv == ['/usr/bin/timeout', '--kill-after=5', '30', '/usr/bin/asterisk', '-rx', 'core show channels count']
    assert kwargs['environ_update']['LC_ALL'] == 'C'


def test_singular_and_maxcalls(host, run_module):
    host.handlers['asterisk'] = (0, '1 active channel\n1 of 10 max active call (10.00% of capacity)\n1 call processed\n', '')
    result = run_module(active_calls, {})
    assert (result['channels'], result['calls'], result['processed']) == (1, 1, 1)


def test_custom_path_without_timeout(host, run_module):
    host.handlers['asterisk'] = (0, '0 active channels\n0 active calls\n0 calls processed\n', '')
    result = run_module(active_calls, {'asterisk_path': '/opt/ast/sbin/asterisk', 'timeout': 0})
    assert host.calls[0][0] == ['/opt/ast/sbin/asterisk', '-rx', 'core show channels count']
    assert result['channels'] == 0


@pytest.mark.parametrize('rc, out, err', [(1, NOT_RUNNING, ''), (1, '', NOT_RUNNING), (0, NOT_RUNNING, '')])
def test_asterisk_not_running(host, run_module, rc, out, err):
    host.handlers['asterisk'] = (rc, out, err)
    result = run_module(active_calls, {})
    assert result['failed'] is True
    assert result['msg'].startswith('Asterisk is not running')
    assert 'asterisk.ctl' in result['msg']


def test_unexpected_output(host, run_module):
    host.handlers['asterisk'] = (0, "No such command 'core show channels count'\n", '')
    result = run_module(active_calls, {})
    assert result['failed'] is True
    assert 'unexpected output' in result['msg']


def test_timeout(host, run_module):
    host.handlers['asterisk'] = (124, '', '')
    result = run_module(active_calls, {'timeout': 5})
    assert result['failed'] is True
    assert 'did not answer within 5 s' in result['msg']


def test_asterisk_missing(host, run_module):
    host.missing.add('asterisk')
    result = run_module(active_calls, {})
    assert result['failed'] is True and 'asterisk' in result['msg']


def test_negative_timeout(host, run_module):
    result = run_module(active_calls, {'timeout': -1})
    assert result['failed'] is True and host.calls == []
