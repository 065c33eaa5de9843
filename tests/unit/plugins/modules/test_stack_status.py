# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_status and proxy_status read what the stack/proxy print (Asterisk 22's CLI, findmnt, journalctl) and
the replication script's files, change nothing, and report a part they cannot read instead of failing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.modules import proxy_status, stack_status

NOT_RUNNING = 'Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n'
# Asterisk 22, lab: `core show channels concise` with one call up for 5 s and one for 1:02:03 (older form)
CONCISE = ('PJSIP/anonymous-00000000!from-extern!1000!2!Up!Wait!3600!sipp!!!3!5!!1796206100.0\n'
           'PJSIP/anonymous-00000001!from-extern!1000!2!Up!Wait!3600!sipp!!!3!01:02:03!!1796206101.0\n')
ODBC = ('\nODBC DSN Settings\n-----------------\n\n  Name:   asterisk\n  DSN:    asterisk\n'
        '    Number of active connections: 1 (out of 5)\n\n  Name:   secondary\n  DSN:    secondary\n'
        '    Number of active connections: 0 (out of 1)\n')
MODULES = ('Module                         Description                              Use Count  Status      Support Level\n'
           'res_pjsip_outbound_publish.so  PJSIP Outbound Publish Support           2          Running              core\n'
           'res_pjsip_publish_asterisk.so  PJSIP Asterisk Event PUBLISH Support     0          Running              core\n')
ENDPOINT = ' Endpoint:  instance2                                            Not in use    0 of inf\n'
FINDMNT = json.dumps({'filesystems': [{'target': '/var/spool/asterisk/voicemail', 'source': 'nfs:/voicemail',
                                       'fstype': 'nfs4', 'options': 'rw,nosuid,nodev'}]})


def asterisk(outputs):
    def handler(argv):
        command = argv[-1]
        return (0, outputs[command], '') if command in outputs else (0, 'No such command %r' % command, '')
    return handler


def healthy(host):
    host.handlers['asterisk'] = asterisk({
        'core show channels count': '2 active channels\n1 active call\n7 calls processed\n',
        'core show channels concise': CONCISE, 'odbc show secondary': ODBC, 'module show like res_pjsip_': MODULES,
        'cel show status': 'CEL Logging: Enabled\nCEL Tracking Event: HANGUP\nCEL Event Subscriber: ODBC CEL backend\n',
        'pjsip show endpoint instance2': ENDPOINT})
    host.handlers['findmnt'] = (0, FINDMNT, '')


@pytest.mark.parametrize('check_mode', [False, True])
def test_a_healthy_stack(host, run_module, check_mode):
    healthy(host)
    res = run_module(stack_status, {'cel_dsn': 'secondary', 'blf_peer_endpoint': 'instance2'}, check_mode=check_mode)
    assert res['changed'] is False
    assert res['asterisk'] == {'running': True, 'channels': 2, 'calls': 1, 'longest_call_seconds': 3723,
                               'error': None}
    assert res['voicemail']['mounted'] is True and res['voicemail']['source'] == 'nfs:/voicemail'
    # the DSN's own section is read, not the first one
    assert (res['cel']['ok'], res['cel']['connections'], res['cel']['max_connections']) == (False, 0, 1)
    assert res['cel']['backend'] is True
    assert res['blf']['ok'] is True and res['blf']['modules'] and res['blf']['endpoint']
    assert res['replication'] is None


def test_cel_needs_the_odbc_backend(host, run_module):
    healthy(host)
    host.handlers['asterisk'] = asterisk({'core show channels count': '0 active channels\n0 active calls\n0 calls processed\n',
                                          'core show channels concise': '', 'odbc show asterisk': ODBC,
                                          'cel show status': 'CEL Logging: Enabled\n'})
    cel = run_module(stack_status, {'cel_dsn': 'asterisk'})['cel']
    assert (cel['connections'], cel['backend'], cel['ok']) == (1, False, False)
    assert 'no ODBC CEL backend' in cel['detail']


def test_asterisk_down_and_share_not_mounted_are_reported_not_failed(host, run_module):
    host.handlers['asterisk'] = (1, NOT_RUNNING, '')
    host.handlers['findmnt'] = (1, '', '')
    res = run_module(stack_status, {'cel_dsn': 'primary', 'blf_peer_endpoint': 'instance1'})
    assert 'failed' not in res
    assert res['asterisk']['running'] is False and 'Unable to connect' in res['asterisk']['error']
    assert res['voicemail']['mounted'] is False
    assert res['cel']['ok'] is False and res['blf']['ok'] is False


def test_replication_traces(host, run_module, tmp_path):
    healthy(host)
    cron = tmp_path / 'xivo-ha-master'
    cron.write_text('#wazo-maintenance# 0 * * * * root /usr/sbin/xivo-master-slave-db-replication 10.0.0.12 >/dev/null\n')
    marker = tmp_path / 'marker'
    marker.write_text('10.0.0.12\n')
    work = tmp_path / 'work'
    work.mkdir()
    for name, age in (('out_slave_backup.sql', 20), ('out_master_backup.sql', 10), ('out_slave_check.sql', 5)):
        (work / name).write_text('')
        os.utime(str(work / name), (1764669600 - age, 1764669600 - age))
    journal = '\n'.join(json.dumps({'__REALTIME_TIMESTAMP': str(ts * 1000000), 'MESSAGE': msg}) for ts, msg in (
        (1764666000, '(root) CMD (/usr/sbin/xivo-master-slave-db-replication 10.0.0.12 >/dev/null)'),
        (1764666001, '(root) CMD (/usr/bin/xivo-sync >/dev/null)'),
        (1764669600, 'pam_unix(cron:session): session closed for user root')))
    host.handlers['journalctl'] = (0, journal, '')
    res = run_module(stack_status, {'replication': True, 'replication_cron_file': str(cron), 'sync_marker': str(marker),
                                    'replication_work_dir': str(work)})
    rep = res['replication']
    assert rep['cron'] == 'paused'
    assert rep['cron_last_run'] == '2025-12-02T09:00:00Z'
    assert rep['script_files']['result'] == 'failed' and 'md5' in rep['script_files']['detail']
    assert rep['sync_marker']['content'] == '10.0.0.12'
    os.unlink(str(work / 'out_slave_check.sql'))
    cron.write_text('0 * * * * root /usr/sbin/xivo-master-slave-db-replication 10.0.0.12 >/dev/null\n')
    rep = run_module(stack_status, {'replication': True, 'replication_cron_file': str(cron),
                                    'sync_marker': str(marker), 'replication_work_dir': str(work)})['replication']
    assert (rep['cron'], rep['script_files']['result']) == ('active', 'succeeded')


def test_journal_transitions_keeps_the_last_ones():
    lines = [json.dumps({'__REALTIME_TIMESTAMP': str((1764669600 + i) * 1000000), 'MESSAGE': msg})
             for i, msg in enumerate(['wazo-ha-check started: primary ...', 'probe detail', 'primary 10.0.0.11 is DOWN',
                                      'FAILOVER: route mode normal -> maintenance', 'FAILBACK: route mode maintenance -> normal'])]
    out = proxy_status.journal_transitions('\n'.join(lines + ['not json']), 3)
    assert [o['message'].split(':')[0] for o in out] == ['primary 10.0.0.11 is DOWN', 'FAILOVER', 'FAILBACK']
    assert out[-1]['at'] == '2025-12-02T10:00:04Z'
    assert proxy_status.journal_transitions('\n'.join(lines), 0) == []
