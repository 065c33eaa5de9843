# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status report of module_utils/status_report.py: who set the route mode, the blockers of an upgrade with
what to do, the replication's evidence, and the table / JSON renderings, from module results as status.yml
registers them (healthy, in maintenance, in failover, with a stack that does not answer)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import status_report as sr

NOW = 1764669600  # 2025-12-02T10:00:00Z
T0 = '2025-12-02T09:00:00Z'


def proxy(mode='normal', lock=None, ha=None, dialogs=(0, 0), **extra):
    res = {'changed': False, 'mode': mode, 'persisted_mode': mode, 'persisted_mtime': T0, 'mode_error': None,
           'lock': lock, 'dialogs': {'primary': dialogs[0], 'secondary': dialogs[1]}, 'dispatcher': [],
           'ha_check': ha if ha is not None else {'state': 'normal', 'since': T0, 'reason': 'primary healthy',
                                                  'failover_owned': False, 'pending_switch': None,
                                                  'last_transition': None, 'transitions': 0},
           'ha_check_unit': 'active', 'ha_check_journal': [], 'upgrade_state': None}
    res.update(extra)
    return res


def status(channels=0, longest=None, mounted=True, cel=True, blf=True, replication=None, running=True):
    return {'changed': False,
            'asterisk': {'running': running, 'channels': channels if running else None,
                         'calls': channels // 2 if running else None, 'longest_call_seconds': longest,
                         'error': None if running else 'Unable to connect to remote asterisk'},
            'voicemail': {'path': '/var/spool/asterisk/voicemail', 'mounted': mounted,
                          'source': 'nfs:/voicemail' if mounted else None},
            'cel': {'dsn': 'peer', 'ok': cel, 'connections': 1 if cel else 0, 'detail': 'peer 1/1'},
            'blf': {'ok': blf, 'detail': 'endpoint peer'},
            'replication': replication}


def version(installed='25.16', candidate='25.17', run=None):
    res = {'changed': False, 'version_before': installed, 'candidate': candidate,
           'upgrade_available': candidate != installed}
    if run:
        res['run'] = run
    return res


REPLICATION = {'cron': 'active', 'cron_last_run': '2025-12-02T09:00:01Z', 'script_files': None,
               'sync_marker': {'path': '/var/lib/wazo-maintenance/ha-synchronized-to', 'content': '10.0.0.12',
                               'mtime': '2025-11-30T12:00:00Z'}}


def stacks(primary=None, secondary=None, pversion=None, sversion=None):
    return {'primary': {'host': 'wazo1', 'status': status(replication=REPLICATION) if primary is None else primary,
                        'version': version() if pversion is None else pversion},
            'secondary': {'host': 'wazo2', 'status': status() if secondary is None else secondary,
                          'version': version() if sversion is None else sversion}}


def build(prx=None, stk=None):
    return sr.build(proxy() if prx is None else prx, stacks() if stk is None else stk, now=NOW)


def blockers(doc, severity='blocker'):
    return [b for b in doc['blockers'] if b['severity'] == severity]


def test_healthy_system_has_no_blocker_and_the_table_says_an_upgrade_may_start():
    doc = build(stk=stacks(primary=status(channels=4, longest=93, replication=REPLICATION)))
    assert doc['blockers'] == [] and doc['upgrade_possible'] is True
    assert doc['route']['mode'] == 'normal' and doc['route']['set_by'] == 'none (no lock held)'
    assert doc['route']['since'] == T0
    primary = doc['stacks']['primary']
    assert (primary['version'], primary['candidate'], primary['upgrade_available']) == ('25.16', '25.17', True)
    assert (primary['kamailio_dialogs'], primary['asterisk_channels'], primary['longest_call_seconds']) == (0, 4, 93)
    table = sr.render_table(doc)
    assert 'none: an upgrade may start' in table
    assert '25.16 -> 25.17 available' in table
    assert '0 dialogs (Kamailio), 4 channels, longest 1m33s' in table
    assert 'primary (wazo1)' in table.splitlines()[0] and 'secondary (wazo2)' in table.splitlines()[0]


def test_operator_maintenance_is_set_by_wazo_mode_since_the_lock():
    lock = {'owner': 'wazo-mode', 'reason': 'wazo-mode maintenance', 'since': '2025-12-02T09:55:00Z'}
    doc = build(proxy('maintenance', lock=lock, ha={'state': 'paused', 'reason': 'maintenance lock held by wazo-mode'}))
    assert doc['route']['set_by'] == 'lock: operator (wazo-mode)'
    assert doc['route']['since'] == '2025-12-02T09:55:00Z'
    [blocker] = blockers(doc)
    assert 'maintenance lock held by operator (wazo-mode)' in blocker['what']
    assert '`wazo-mode normal`' in blocker['todo']
    assert 'since 2025-12-02T09:55:00Z (5m00s ago)' in sr.render_table(doc)


def test_an_upgrade_run_holding_the_lock_is_named_with_its_run_and_says_rerun_or_abort():
    lock = {'owner': 'upgrade.yml', 'reason': 'upgrade.yml run', 'since': T0, 'run': '3f2a', 'user': 'root',
            'host': 'ctl', 'pid': 42}
    doc = build(proxy('maintenance', lock=lock, upgrade_state={'started': T0, 'from': '25.16', 'target': '25.17'}))
    assert doc['route']['set_by'] == 'lock: upgrade.yml run 3f2a of root@ctl (pid 42)'
    whats = [b['what'] for b in blockers(doc)]
    assert any('upgrade.yml run 3f2a' in w for w in whats)
    assert any('unfinished upgrade from 25.16 to 25.17' in w for w in whats)
    assert all('rerun upgrade.yml' in b['todo'] for b in blockers(doc))


def test_failover_is_set_by_the_ha_check_since_its_transition():
    ha = {'state': 'failover', 'since': '2025-12-02T09:59:00Z', 'reason': 'primary down', 'failover_owned': True,
          'pending_switch': None, 'transitions': 1,
          'last_transition': {'at': '2025-12-02T09:58:30Z', 'kind': 'failover', 'from': 'normal',
                              'to': 'maintenance', 'reason': 'primary failed 3 probes'}}
    doc = build(proxy('maintenance', ha=ha, persisted_mtime='2025-12-02T09:58:30Z'),
                stacks(primary=status(running=False, replication=REPLICATION)))
    assert doc['route']['set_by'] == 'HA check failover'
    assert doc['route']['since'] == '2025-12-02T09:58:30Z'
    whats = [b['what'] for b in blockers(doc)]
    assert whats[0].startswith('HA check failed over')
    assert any('Asterisk not running' in w for w in whats)
    table = sr.render_table(doc)
    assert 'failover normal -> maintenance at 2025-12-02T09:58:30Z' in table
    assert 'Asterisk DOWN' in table


def test_maintenance_without_lock_and_not_the_ha_check_is_unknown_and_a_blocker():
    doc = build(proxy('maintenance'))
    assert doc['route']['set_by'].startswith('unknown')
    [blocker] = blockers(doc)
    assert 'without a lock' in blocker['what'] and 'wazo-mode normal' in blocker['todo']


def test_pending_switch_and_mode_disagreement_block():
    pending = {'kind': 'failover', 'from': 'normal', 'to': 'maintenance', 'at': T0}
    ha = {'state': 'error', 'reason': 'failover failed', 'pending_switch': pending}
    doc = build(proxy('normal', ha=ha, persisted_mode='maintenance'))
    whats = [b['what'] for b in blockers(doc)]
    assert any('routemode.cfg holds maintenance' in w for w in whats)
    assert any('unfinished failover' in w for w in whats)
    assert any('HA check in error' in b['what'] for b in blockers(doc, 'warning'))


def test_an_unreachable_stack_is_shown_and_blocks_without_breaking_the_report():
    gone = {'unreachable': True, 'msg': 'Failed to connect to the host via ssh: timed out', 'changed': False}
    doc = build(stk=stacks(secondary=gone, sversion=gone))
    sec = doc['stacks']['secondary']
    assert sec['reachable'] is False and sec['version'] is None
    [blocker] = blockers(doc)
    assert blocker['what'].startswith('secondary (wazo2) unreachable') and 'SSH' in blocker['todo']
    table = sr.render_table(doc)
    row = [line for line in table.splitlines() if line.startswith('live calls')][0]
    assert row.rstrip().endswith('0 dialogs (Kamailio), stack unreachable')
    assert 'NO (timed out)' in table
    json.loads(sr.render_json(doc))


def test_an_unreachable_proxy_is_a_blocker_and_the_stacks_are_still_shown():
    doc = build(prx={'unreachable': True, 'msg': 'no route to host'})
    assert doc['route']['mode'] is None and 'unreachable' in doc['route']['error']
    assert blockers(doc)[0]['what'].startswith('proxy unreachable')
    assert doc['stacks']['primary']['asterisk_channels'] == 0
    table = sr.render_table(doc)
    assert 'UNKNOWN: proxy unreachable: no route to host' in table
    assert 'HA check         | not read (proxy unreachable: no route to host)' in table


@pytest.mark.parametrize('change, expected', [
    (lambda s: s['secondary'].update(version=version('25.17', '25.17')), 'versions differ: primary 25.16, secondary 25.17'),
    (lambda s: s['primary'].update(status=status(mounted=False, replication=REPLICATION)),
     'primary (wazo1): voicemail share not mounted on /var/spool/asterisk/voicemail'),
    (lambda s: s['secondary'].update(version=version(run={'id': '1-2', 'status': 'failed', 'collected': False,
                                                          'msg': 'disk full'})),
     'secondary (wazo2): the last wazo-upgrade run failed: disk full'),
    (lambda s: s['primary'].update(version=version(run={'id': '1-2', 'status': 'running'})),
     'primary (wazo1): a wazo-upgrade run is running (1-2)'),
    (lambda s: s['primary'].update(version={'failed': True, 'msg': 'apt-cache policy: no wazo-platform'}),
     'primary (wazo1): version not read (failed: apt-cache policy: no wazo-platform)'),
])
def test_each_stack_rule_is_one_blocker(change, expected):
    stk = stacks()
    change(stk)
    doc = build(stk=stk)
    assert [b['what'] for b in blockers(doc)] == [expected]
    assert doc['upgrade_possible'] is False


def test_links_down_and_a_paused_cron_are_warnings_not_blockers():
    rep = dict(REPLICATION, cron='paused')
    doc = build(stk=stacks(primary=status(cel=False, replication=rep), secondary=status(blf=False)))
    assert blockers(doc) == [] and doc['upgrade_possible'] is True
    whats = [b['what'] for b in blockers(doc, 'warning')]
    assert any('CEL link to the secondary' in w for w in whats)
    assert any('BLF/MWI publication to the primary' in w for w in whats)
    assert any('DB sync cron on the primary commented' in w for w in whats)


def test_replication_takes_the_newest_evidence_and_says_what_it_is_based_on():
    doc = build()
    rep = doc['replication']
    assert rep['last'] == '2025-12-02T09:00:01Z' and rep['result'] == 'unknown'
    assert 'cron started it (journal)' in rep['based_on']
    assert len(rep['sources']) == 2
    # the real script's files, newer, say it failed
    failed = dict(REPLICATION, script_files={'last_run': '2025-12-02T09:00:05Z', 'result': 'failed',
                                             'detail': 'out_slave_check.sql kept'})
    doc = build(stk=stacks(primary=status(replication=failed)))
    assert (doc['replication']['result'], doc['replication']['last']) == ('failed', '2025-12-02T09:00:05Z')
    assert any('last replication failed' in b['what'] for b in blockers(doc, 'warning'))
    # only the setup marker
    marker_only = dict(REPLICATION, cron_last_run=None)
    doc = build(stk=stacks(primary=status(replication=marker_only)))
    assert doc['replication']['result'] == 'succeeded'
    assert doc['replication']['based_on'].startswith('setup.yml first sync marker')
    # nothing at all
    doc = build(stk=stacks(primary=status(replication={'cron': 'missing'})))
    assert doc['replication']['last'] is None and 'no trace' in doc['replication']['based_on']
    assert any('no DB sync cron' in b['what'] for b in blockers(doc, 'warning'))


def test_json_is_the_document():
    doc = build()
    assert json.loads(sr.render_json(doc)) == json.loads(json.dumps(doc))


def test_build_does_not_change_its_inputs():
    prx, stk = proxy(), stacks()
    before = copy.deepcopy((prx, stk))
    build(prx, stk)
    assert (prx, stk) == before


@pytest.mark.parametrize('seconds, text', [(None, '?'), (0, '0s'), (59, '59s'), (93, '1m33s'), (7322, '2h02m'),
                                           (200000, '2d07h')])
def test_duration(seconds, text):
    assert sr.duration(seconds) == text
