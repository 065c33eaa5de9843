# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proofs of upgrade.yml on the lab: zero failed calls under load, a control run that does drop
calls, the failure paths, resume, check mode, Kamailio restart in maintenance, a bad inventory.

    make lab-up && ansible-playbook -i .lab/inventory.yml playbooks/setup.yml
    LAB_INVENTORY=.lab/inventory.yml .venv/bin/pytest -v tests/upgrade
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

import yaml

from celproof import assert_cel_continuity, window_start
from conftest import FIRST, LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
SAMPLER = os.path.join(labtools.ROOT, 'tests', 'load', 'sample_calls.py')
CARELESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'careless.yml')


def _upgrade(lab, tmp_path, *args):
    report = tmp_path / 'reports'
    # A bounded drain: a stuck test fails in minutes instead of waiting the production default (1 h).
    proc = lab.playbook(UPGRADE, '-e', 'wazo_mm_upgrade_report_dir=%s' % report,
                        '-e', 'wazo_mm_upgrade_drain_timeout=240', *args, check=False)
    return proc, report


def assert_blf_crosses_both_ways(lab, bound=20.0):
    """A device state set on one stack shows on the other's `core show hints`, both ways, within `bound` s
    (fresh device: no cached remote state can make it pass). Fails after an upgrade that left a stack's
    publication down (both Asterisks were restarted by their upgrade; the first PUBLISH may get 412)."""
    tag = uuid.uuid4().hex[:10]
    exten, device = 'blfup%s' % tag, 'Custom:blfup-%s' % tag
    try:
        for group in ('primary', 'secondary'):
            labtools.asterisk_rx(lab, group, 'dialplan add extension %s,hint,%s into default' % (exten, device))
        for src, dst in (('primary', 'secondary'), ('secondary', 'primary')):
            labtools.asterisk_rx(lab, src, 'devstate change %s INUSE' % device)
            state, waited = labtools.wait_hint(lab, dst, exten, 'InUse', bound)
            assert state == 'InUse', 'after the upgrade, %s -> %s: %s still %s after %.0f s' % (
                src, dst, device, state, waited)
            labtools.asterisk_rx(lab, src, 'devstate change %s NOT_INUSE' % device)
            state, waited = labtools.wait_hint(lab, dst, exten, 'Idle', bound)
            assert state == 'Idle', 'after the upgrade, %s -> %s: %s back to NOT_INUSE, still %s' % (
                src, dst, device, state)
    finally:
        for group in ('primary', 'secondary'):
            labtools.asterisk_rx(lab, group, 'dialplan remove extension %s@default hint' % exten, check=False)


def assert_report_reads_like_a_person_wrote_it(report_dir, report):
    """The Markdown report: sections a person reads, durations in words, no Python dict/list/repr text."""
    md = (report_dir / ('upgrade-%s.md' % LAST)).read_text()
    for section in ('## Calls', '## Call-center agents', '## Steps', '## Warnings', '## What to check next'):
        assert section in md, md
    assert re.search(r'in \d+ (min \d\d s|s)\. Both stacks now run %s' % re.escape(LAST), md), md
    for raw in ("{'", "[{", "': ", "None", "True", "False", "u'"):
        assert raw not in md, (raw, md)
    assert 'upgrade-%s-timeline.svg' % LAST in md
    assert isinstance(report['seconds'], (int, float)) and report['drain']['outcome'] == 'drained', report['drain']


def test_check_mode_prints_the_plan_and_changes_nothing(lab, tmp_path):
    lab.reset_versions()
    before = lab.state()
    proc, _unused = _upgrade(lab, tmp_path, '--check')
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert 'Upgrade plan: full' in proc.stdout
    assert '%s -> %s' % (FIRST, LAST) in proc.stdout
    assert lab.state() == before


def test_upgrade_under_load_drops_no_call(lab, load, tmp_path, postgresql_down_during_upgrade):
    """upgrade.yml under SIPp load through the proxy: no call fails, the cluster ends as it started on the new
    version, the report and the timeline tell it. Each stack's PostgreSQL goes down during its upgrade (as the
    real upgrade's PostgreSQL package does), so the same run proves CEL continuity (celproof.py)."""
    lab.reset_versions()
    start = window_start(lab)
    cron_before = lab.ssh('primary', 'cat /etc/cron.d/xivo-ha-master').stdout
    samples = tmp_path / 'calls.csv'
    load.start(rate=10, calls=5000, min_ms=2000, max_ms=30000)
    subprocess.run([sys.executable, SAMPLER, 'start', '--inventory', lab.path, '--out', str(samples),
                    '--interval', '1', '--max-seconds', '1200'], check=True)
    try:
        load.wait_created(150, timeout=60)  # calls in progress on the primary before anything starts
        proc, report_dir = _upgrade(lab, tmp_path, '-e', 'wazo_mm_upgrade_calls_samples=%s' % samples)
        load.wait_created(1000, timeout=300)  # at least 1000 calls in all
        result = load.stop()
    finally:
        subprocess.run([sys.executable, SAMPLER, 'stop', '--out', str(samples)], check=False, capture_output=True)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert result['failed'] == 0, result
    assert result['created'] >= 1000 and result['successful'] == result['created'], result
    state = lab.state()
    assert state['versions'] == {'primary': LAST, 'secondary': LAST}
    assert state['mode'] == 'normal'
    assert not state['lock']
    assert state['cron'] == cron_before  # DB sync cron restored exactly
    assert state['ha_check'] == 'active'
    with open(report_dir / ('upgrade-%s.json' % LAST)) as handle:
        report = json.load(handle)
    # calls were still up on the primary when traffic switched, and all of them ended normally (0 failed)
    at_switch = report['drain']['calls_at_switch']
    assert max(at_switch.get('kamailio', 0), at_switch.get('asterisk', 0)) > 0, report['drain']
    assert [s['step'] for s in report['steps']][-1] == 'replicate'
    # agent logins reconciled at each switch, without error (agent_sync)
    assert [a['when'] for a in report['agents']] == [
        'before the switch to maintenance', 'before the switch to normal', 'after the switch to normal'], report['agents']
    assert not any(a['error'] for a in report['agents']), report['agents']
    assert_report_reads_like_a_person_wrote_it(report_dir, report)
    # the samples: each stack measured on its own (while the primary was drained, the secondary carried calls)
    rows = [line.split(',') for line in samples.read_text().splitlines()[1:]]
    assert any(int(p) == 0 and int(s) > 0 for _t, p, s in rows), rows[::10]
    assert any(int(p) > 0 and int(s) == 0 for _t, p, s in rows), rows[::10]
    # the timeline: both stacks carried calls (the secondary during maintenance), steps marked
    svg = ET.parse(str(report_dir / report['timeline'])).getroot()
    lines = svg.findall('.//{http://www.w3.org/2000/svg}polyline')
    assert [line.find('{http://www.w3.org/2000/svg}title').text for line in lines] == ['primary', 'secondary']
    peaks = [max(float(pt.split(',')[1]) for pt in line.get('points').split()) for line in lines]
    texts = [t.text for t in svg.iter('{http://www.w3.org/2000/svg}text')]
    assert 'drain primary' in texts, texts
    assert any(t.startswith('secondary (peak ') and t != 'secondary (peak 0)' for t in texts), texts
    assert any(t.startswith('primary (peak ') and t != 'primary (peak 0)' for t in texts), (texts, peaks)
    # BLF state still crosses both ways once both stacks run the new version
    assert_blf_crosses_both_ways(lab)
    # both stacks hold the same CEL rows and every call's call log, though each PostgreSQL was down
    assert_cel_continuity(lab, tmp_path, report, result, start, postgresql_down_during_upgrade)


def test_control_careless_upgrade_drops_calls(lab, load):
    """Same load, the primary upgraded in place: calls must fail, or the proof above proves nothing."""
    lab.reset_versions()
    load.start(rate=10, calls=5000, min_ms=2000, max_ms=30000)
    load.wait_created(150, timeout=60)
    lab.playbook(CARELESS)
    load.wait_created(400, timeout=120)
    result = load.stop()
    assert result['failed'] > 0, result


def test_secondary_failure_stops_before_any_switch(lab, load, tmp_path):
    lab.reset_versions()
    lab.ssh('secondary', 'echo "message: disk full (injected)" > /etc/wazo-standin/fail-next-upgrade')
    load.start(rate=5, calls=2000, min_ms=2000, max_ms=10000)
    load.wait_created(20, timeout=30)
    proc, report_dir = _upgrade(lab, tmp_path)
    result = load.stop()
    assert proc.returncode != 0
    assert 'UPGRADE STOPPED BEFORE ANY TRAFFIC MOVED' in proc.stdout
    assert 'restore it from its snapshot' in proc.stdout
    assert result['failed'] == 0, result
    state = lab.state()
    assert state['mode'] == 'normal' and state['versions'] == {'primary': FIRST, 'secondary': FIRST}
    assert state['lock']['owner'] == 'upgrade.yml' and state['ha_check'] != 'active'
    assert '#wazo-maintenance#' in state['cron']
    assert (report_dir / 'logs' / 'secondary-wazo-upgrade.log').exists()
    # the abort path puts everything back
    proc, _unused = _upgrade(lab, tmp_path, '-e', 'wazo_mm_upgrade_abort=true')
    assert proc.returncode == 0, proc.stdout[-4000:]
    state = lab.state()
    assert not state['lock'] and state['ha_check'] == 'active' and '#wazo-maintenance#' not in state['cron']


def test_primary_failure_keeps_traffic_on_secondary_then_resumes(lab, load, tmp_path):
    lab.reset_versions()
    lab.ssh('primary', 'touch /etc/wazo-standin/fail-next-upgrade')
    load.start(rate=5, calls=2000, min_ms=2000, max_ms=10000)
    load.wait_created(20, timeout=30)
    proc, _unused = _upgrade(lab, tmp_path)
    assert proc.returncode != 0
    assert 'PRIMARY UPGRADE FAILED' in proc.stdout and 'revert the primary to its snapshot' in proc.stdout
    state = lab.state()
    assert state['mode'] == 'maintenance'
    assert state['versions'] == {'primary': FIRST, 'secondary': LAST}
    # rerun: resumes with the primary (no last sync across versions), ends in normal mode
    proc, _unused = _upgrade(lab, tmp_path)
    result = load.stop()
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'Upgrade plan: resume' in proc.stdout
    assert result['failed'] == 0, result
    state = lab.state()
    assert state['versions'] == {'primary': LAST, 'secondary': LAST} and state['mode'] == 'normal'
    assert not state['lock'] and '#wazo-maintenance#' not in state['cron']


def test_nothing_to_upgrade_is_a_no_op(lab, tmp_path):
    proc, _unused = _upgrade(lab, tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    if lab.version('primary') == LAST:
        assert 'nothing to upgrade' in proc.stdout
        assert all(r.get('changed', 0) == 0 for r in labtools.recap(proc.stdout).values())


def test_kamailio_restart_in_maintenance_keeps_calls_off_the_primary(lab):
    lab.ssh('proxy', 'wazo-mode maintenance --no-wait --force')
    try:
        lab.ssh('proxy', 'systemctl restart kamailio')
        assert lab.route_mode()['mode'] == 'maintenance'
        before = lab.channels('primary')['processed']
        ok, failed, out = labtools.sipp_call(lab.hosts['proxy'], labtools.host_ip_towards(lab.hosts['proxy']),
                                             duration_ms=500, calls=5, rate=5)
        assert (ok, failed) == (5, 0), out[-3000:]
        assert lab.channels('primary')['processed'] == before  # 0 calls sent to the primary
    finally:
        lab.ssh('proxy', 'wazo-mode normal --no-wait --force')


def test_bad_inventory_refused_before_any_change(lab, tmp_path):
    with open(lab.path) as handle:
        inv = yaml.safe_load(handle)
    inv['all']['children']['secondary']['hosts']['secondary']['wazo_mm_address'] = lab.hosts['primary']
    bad = tmp_path / 'inventory.yml'
    bad.write_text(yaml.safe_dump(inv))
    os.symlink(os.path.join(os.path.dirname(lab.path), 'group_vars'), str(tmp_path / 'group_vars'))
    before = lab.state()
    proc = lab.playbook(UPGRADE, inventory=str(bad), check=False)
    assert proc.returncode != 0
    assert 'wazo_mm_address' in proc.stdout + proc.stderr
    assert lab.state() == before
