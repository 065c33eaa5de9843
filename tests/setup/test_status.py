# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/status.yml on the converged lab: the values it reports are the lab's, in normal mode with a live
call (counted by Kamailio and by the primary's real Asterisk), in an operator maintenance (`wazo-mode
maintenance`, lock held) and in an HA check failover (the primary's Asterisk stopped); the last replication is the
one cron started; --check changes nothing; the JSON printed is the JSON written to wazo_mm_status_file.

Each test puts the lab back (mode normal, no lock, Asterisk running, HA check normal)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import os
import re
import textwrap
import threading
import time

import pytest

import labtools

STATUS = os.path.join(labtools.ROOT, 'playbooks', 'status.yml')


def back_to_normal(lab):
    """Asterisk running on the primary and answering SIP (else the HA check fails over again), then mode normal."""
    lab.ssh('primary', 'systemctl start asterisk', check=False)
    primary = lab.address('primary')
    assert labtools.wait_for(lambda: lab.ssh('proxy', 'wazo-ha-check --probe %s' % primary, check=False).returncode == 0, 30)
    assert labtools.wait_for(lambda: (labtools.ha_state(lab).get('primary') or {}).get('consecutive_failures') == 0, 10), labtools.ha_state(lab)
    lab.ssh('proxy', 'wazo-mode normal --no-wait', check=False)
    assert labtools.wait_for(lambda: labtools.ha_state(lab).get('state') == 'normal' and lab.route_mode()['mode'] == 'normal', 30), \
        labtools.ha_state(lab)


@pytest.fixture
def status_lab(standin):
    back_to_normal(standin)
    yield standin
    back_to_normal(standin)


def printed_json(stdout):
    """The JSON document the 'Show the status' task printed (the msg block of the yaml result format)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if 'TASK [Show the status]' in line)
    begin = next(i for i in range(start, len(lines)) if lines[i].strip().startswith('msg: |'))
    block = []
    for line in lines[begin + 1:]:
        if line.strip() and not line.startswith('        '):
            break
        block.append(line)
    return json.loads(textwrap.dedent('\n'.join(block)))


def status(lab, tmp_path, *args):
    """Run status.yml as JSON (printed and written, the same); returns the document."""
    out = tmp_path / 'status.json'
    proc = lab.playbook(STATUS, '-e', 'wazo_mm_status_format=json', '-e', 'wazo_mm_status_file=%s' % out, *args)
    doc = json.loads(out.read_text())
    assert printed_json(proc.stdout) == doc
    if '--check' in args:   # the report file is written on the controller, nothing changes on the hosts
        assert all(r['changed'] == 0 for r in labtools.recap(proc.stdout).values()), proc.stdout[-2000:]
    return doc


def installed_version(lab, group):
    return lab.ssh(group, "dpkg-query -W -f '${Version}' wazo-platform").stdout.strip()


def test_normal_mode_with_a_live_call(status_lab, tmp_path):
    lab = status_lab
    local = labtools.host_ip_towards(lab.hosts['proxy'])
    result = {}
    call = threading.Thread(target=lambda: result.update(call=labtools.sipp_call(
        lab.hosts['proxy'], local, duration_ms=30000, timeout=60)))
    call.start()
    try:
        assert labtools.wait_for(lambda: lab.channels('primary').get('channels', 0) >= 1, 10), 'the call did not start'
        time.sleep(2)
        doc = status(lab, tmp_path)
    finally:
        call.join(90)
    assert result['call'][:2] == (1, 0), result['call'][2][-2000:]

    route = doc['route']
    assert (route['mode'], route['persisted_mode'], route['lock'], route['set_by']) == \
        ('normal', 'normal', None, 'none (no lock held)')
    primary, secondary = doc['stacks']['primary'], doc['stacks']['secondary']
    assert primary['reachable'] and secondary['reachable']
    assert primary['kamailio_dialogs'] == 1 and secondary['kamailio_dialogs'] == 0
    assert primary['asterisk_channels'] >= 1 and secondary['asterisk_channels'] == 0
    assert 2 <= primary['longest_call_seconds'] <= 30
    for group, one in (('primary', primary), ('secondary', secondary)):
        assert installed_version(lab, group).startswith(one['version']), one
        assert one['voicemail']['mounted'] is True, one['voicemail']
        assert one['cel']['ok'] is True and one['cel']['connections'] >= 1 and one['cel']['backend'], one['cel']
        assert one['blf']['ok'] is True, one['blf']
    assert doc['ha_check']['state'] == 'normal'
    assert doc['replication']['cron'] == 'active'
    assert doc['replication']['last'] and doc['replication']['based_on'], doc['replication']
    assert doc['blockers'] == [] and doc['upgrade_possible'] is True


def test_check_mode_changes_nothing_and_prints_the_table(status_lab):
    proc = status_lab.playbook(STATUS, '--check')
    recap = labtools.recap(proc.stdout)
    assert set(recap) == {'proxy', 'primary', 'secondary'}
    assert all(r['changed'] == 0 and r['failed'] == 0 for r in recap.values()), recap
    assert re.search(r'route mode +\| normal, new calls to the primary', proc.stdout), proc.stdout[-3000:]
    assert 'none: an upgrade may start' in proc.stdout


def test_operator_maintenance(status_lab, tmp_path):
    lab = status_lab
    lab.ssh('proxy', 'wazo-mode maintenance --no-wait')
    assert labtools.wait_for(lambda: labtools.ha_state(lab).get('state') == 'paused', 10), labtools.ha_state(lab)
    doc = status(lab, tmp_path)
    route = doc['route']
    assert route['mode'] == 'maintenance' and route['lock']['owner'] == 'wazo-mode'
    assert route['set_by'] == 'lock: operator (wazo-mode)' and route['since'] == route['lock']['since']
    assert doc['ha_check']['state'] == 'paused'
    [blocker] = [b for b in doc['blockers'] if b['severity'] == 'blocker']
    assert 'maintenance lock held by operator (wazo-mode)' in blocker['what'] and 'wazo-mode normal' in blocker['todo']
    # the table says the same
    proc = lab.playbook(STATUS, '--check')
    assert re.search(r'set by +\| lock: operator \(wazo-mode\), since %s' % route['since'], proc.stdout), proc.stdout[-3000:]
    assert all(r['changed'] == 0 for r in labtools.recap(proc.stdout).values())
    assert lab.route_mode()['lock']['owner'] == 'wazo-mode'   # still held: the status took and released nothing


def test_ha_check_failover(status_lab, tmp_path):
    lab = status_lab
    lab.ssh('primary', 'systemctl stop asterisk')
    assert labtools.wait_for(lambda: labtools.ha_state(lab).get('state') == 'failover', 15), labtools.ha_state(lab)
    doc = status(lab, tmp_path, '--check')
    route, ha = doc['route'], doc['ha_check']
    assert route['mode'] == 'maintenance' and route['lock'] is None
    assert route['set_by'] == 'HA check failover'
    assert route['since'] == ha['last_transition']['at'] and ha['last_transition']['kind'] == 'failover'
    assert ha['state'] == 'failover'
    assert any(line['message'].startswith('FAILOVER') for line in ha['journal']), ha['journal']
    assert doc['stacks']['primary']['asterisk_running'] is False
    whats = [b['what'] for b in doc['blockers'] if b['severity'] == 'blocker']
    assert whats[0].startswith('HA check failed over'), whats
    assert any('Asterisk not running' in w for w in whats), whats
    assert doc['upgrade_possible'] is False


def test_last_replication_started_by_cron(status_lab, tmp_path):
    """The replication cron's start (cron's journal) is the last replication shown, said to be based on it, its
    result unknown (the cron sends the script's output to /dev/null). A temporary cron.d entry runs it at the
    next minute, as /etc/cron.d/xivo-ha-master does every hour."""
    lab = status_lab
    secondary = lab.address('secondary')
    cron = '/etc/cron.d/wazo-mm-status-test'
    since = lab.ssh('primary', "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    lab.ssh('primary', "echo '* * * * * root /usr/sbin/xivo-master-slave-db-replication %s >/dev/null' > %s"
            % (secondary, cron))

    def cron_started():
        return lab.ssh('primary', "journalctl -u cron.service --since '%s' -o short-unix --no-pager "
                                  "| grep 'CMD (/usr/sbin/xivo-master-slave-db-replication'" % since,
                       check=False).stdout.strip()

    try:
        started = labtools.wait_for(cron_started, 75, interval=2)
    finally:
        lab.ssh('primary', 'rm -f %s' % cron)
    assert started, 'cron did not start the replication within 75 s'
    doc = status(lab, tmp_path)
    rep = doc['replication']
    at = float(started.splitlines()[-1].split()[0])
    assert rep['last'] and abs(calendar.timegm(time.strptime(rep['last'], '%Y-%m-%dT%H:%M:%SZ')) - at) < 2, (rep, started)
    assert rep['result'] == 'unknown' and rep['based_on'].startswith('cron started it (journal)'), rep
    assert rep['cron'] == 'active'
