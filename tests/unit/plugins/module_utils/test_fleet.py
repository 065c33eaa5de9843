# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet gate (next batch or not) and the fleet report's lines."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wazo.maintenance_mode.plugins.module_utils.fleet import gate, render, site_line

REPORT = {
    'result': 'succeeded', 'from': {'primary': '25.16', 'secondary': '25.16'}, 'target': '26.01', 'seconds': '184.2',
    'drain': {'calls_at_switch': {'time': 1796222206.9, 'kamailio': 42, 'asterisk': 40}, 'outcome': 'drained'},
    'steps': [{'step': 'upgrade secondary', 'ended': '2026-12-02T10:00:00.000000Z'},
              {'step': 'switch to maintenance', 'ended': '2026-12-02T10:00:10.500000Z'},
              {'step': 'switch to normal', 'ended': '2026-12-02T10:01:40.500000Z'}],
}


def test_gate_zero_percent_stops_at_the_first_failure():
    assert gate({}, 3, 0) == (True, '')
    start, why = gate({'paris': {'result': 'failed'}}, 3, 0)
    assert not start
    assert '1 of 3 site(s) failed (paris)' in why


def test_gate_threshold_counts_failed_not_stopped_sites():
    records = {'paris': {'result': 'failed'}, 'lyon': {'result': 'stopped'}}
    assert gate(records, 4, 25) == (True, '')
    assert not gate(dict(records, nice={'result': 'failed'}), 4, 25)[0]


def test_site_line_from_the_upgrade_report():
    line = site_line('paris', None, REPORT, {'before': '25.16'})
    assert line['result'] == 'succeeded'
    assert (line['before'], line['after']) == ('25.16', '26.01')
    assert line['maintenance_seconds'] == 90.0
    assert line['calls_drained'] == 42


def test_site_line_of_a_failed_site_keeps_its_version_and_reason():
    line = site_line('lyon', {'result': 'failed', 'step': 'Upgrade', 'reason': 'wazo-upgrade failed on w2'},
                     None, {'before': '25.16', 'after': '25.16'})
    assert line['result'] == 'failed'
    assert line['after'] == '25.16'
    text = render([site_line('paris', None, REPORT, {}), line])
    assert text.splitlines()[0].split() == ['site', 'result', 'before', 'after', 'in', 'maintenance', 'calls',
                                            'drained', 'time']
    assert '2 site(s): 1 failed, 1 succeeded' in text
    assert 'lyon failed at "Upgrade": wazo-upgrade failed on w2' in text
