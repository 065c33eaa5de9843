# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CEL continuity across upgrade.yml on the lab's real Asterisk 22, under SIPp load.

Each stack's Asterisk writes its CEL rows into its own PostgreSQL and, through cel_odbc, into the peer's.
While a stack's PostgreSQL is down (its upgrade), the rows its peer produces never reach it. The proof: with
upgrade.yml's CEL continuity step, after the run both stacks hold exactly the same CEL rows (multiset of
linkedid|eventtype|eventtime) for the run's window, every call has its call log on each stack, the step
really backfilled rows, and a rerun of the backfill copies nothing. The control: the same run without the
step (the wazo-maintenance-mode README's procedure) leaves the two stacks with different rows; the rows
missing on each side are counted and written to <tmp>/cel-control.json.

    LAB_NAME=cel LAB_OCTET=50 make lab-up
    .venv/bin/ansible-playbook -i .lab-cel/inventory.yml setup.yml
    LAB_INVENTORY=$PWD/.lab-cel/inventory.yml .venv/bin/pytest -q -rP tests/upgrade/test_cel_continuity.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import shlex
import time
from collections import Counter

import pytest

from conftest import LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
# Smaller than the zero-drop proof's load, still calls on the primary before the run and on the secondary
# during the whole maintenance window: 5 new calls/s of 2-10 s (about 25 in progress).
RATE, MIN_MS, MAX_MS = 5, 2000, 10000
MARGIN = datetime.timedelta(minutes=5)
ROW = "linkedid||'|'||eventtype||'|'||to_char(eventtime,'YYYY-MM-DD HH24:MI:SS.US')"
STACKS = ('primary', 'secondary')


# The stand-in's real-wazo-upgrade skips the real one's `apt-get install postgresql-15` (step 4, between
# stop_wazo and start_wazo), which restarts the cluster when a new PostgreSQL package comes with the upgrade:
# without it the lab's PostgreSQL never goes down and no CEL row is lost (measured: 0 rows to backfill either
# way). These hooks, in wazo-upgrade's own post-stop.d / pre-start.d, put that outage back for the two proofs.
HOOKS = '/usr/share/wazo-upgrade/%s.d/50-test-cel-postgresql-%s'
OUTAGE_LOG = '/var/log/wazo-standin/test-cel-postgresql.log'
PG_UNIT = 'postgresql@15-main'


@pytest.fixture
def postgresql_down_during_upgrade(lab):
    """Each stack's PostgreSQL stopped while wazo-upgrade has Wazo stopped (as the real upgrade's PostgreSQL
    package installation does); removed at teardown. Yields a function returning {stack: [(stop|start)]}."""
    script = 'rm -f %s; ' % OUTAGE_LOG
    for state, action in (('post-stop', 'stop'), ('pre-start', 'start')):
        path = HOOKS % (state, action)
        lines = ('#!/bin/sh', 'echo "$(date -u +%%FT%%T.%%N) %s" >> %s' % (action, OUTAGE_LOG),
                 'systemctl %s %s' % (action, PG_UNIT))
        script += 'mkdir -p %s && printf "%%s\\n" %s > %s && chmod 755 %s; ' % (
            os.path.dirname(path), ' '.join(shlex.quote(line) for line in lines), path, path)
    for group in STACKS:
        lab.ssh(group, script)

    def outages():
        logs = {g: lab.ssh(g, 'cat %s' % OUTAGE_LOG, check=False).stdout for g in STACKS}
        return {g: [line.split()[-1] for line in log.splitlines()] for g, log in logs.items()}
    yield outages
    hooks = (HOOKS % ('post-stop', 'stop'), HOOKS % ('pre-start', 'start'))
    cleanup = 'rm -f %s %s; systemctl start %s' % (hooks + (PG_UNIT,))
    for group in STACKS:
        lab.ssh(group, cleanup, check=False)


def psql(lab, group, sql):
    """Rows of a query on a stack's asterisk database, as postgres (one text column per line)."""
    cmd = 'su postgres -c %s' % shlex.quote('psql -X -At -v ON_ERROR_STOP=1 -d asterisk -c %s' % shlex.quote(sql))
    out = lab.ssh(group, cmd, timeout=120).stdout
    return [line for line in out.splitlines() if line]


def window_start(lab):
    """The primary's clock minus MARGIN, aware, in the zone Asterisk stamps eventtime with (the local time of
    its root: cel_odbc's default, usegmtime = no)."""
    out = lab.ssh('primary', "chroot /opt/asterisk-root date '+%Y-%m-%d %H:%M:%S %z'").stdout.strip()
    return datetime.datetime.strptime(out, '%Y-%m-%d %H:%M:%S %z') - MARGIN


def sql_time(instant, zone):
    """An aware datetime as the naive eventtime text Asterisk would have written in `zone`."""
    return instant.astimezone(zone).strftime('%Y-%m-%d %H:%M:%S.%f')


def cel_rows(lab, group, since):
    return psql(lab, group, "SELECT %s FROM cel WHERE eventtime >= '%s' ORDER BY 1" % (ROW, since))


def wait_no_channel(lab, timeout=120):
    """Both stacks' Asterisk at 0 channels (bounded): every CEL row of the calls has been written."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {g: lab.channels(g).get('channels') for g in STACKS}
        if all(n == 0 for n in counts.values()) or time.monotonic() > deadline:
            return counts
        time.sleep(2)


def upgrade_under_load(lab, load, tmp_path, *extra):
    """Stacks back to the first version, SIPp load through the proxy, upgrade.yml, load stopped, Asterisk idle
    on both stacks. Returns (playbook process, report or None, SIPp result, window start (aware), seconds from
    the start of the load to idle stacks)."""
    lab.reset_versions()
    start = window_start(lab)
    started = time.monotonic()
    load.start(rate=RATE, calls=5000, min_ms=MIN_MS, max_ms=MAX_MS)
    load.wait_created(25, timeout=60)  # calls in progress on the primary before anything starts
    report_dir = tmp_path / 'reports'
    proc = lab.playbook(UPGRADE, '-e', 'wazo_mm_upgrade_report_dir=%s' % report_dir,
                        '-e', 'wazo_mm_upgrade_drain_timeout=240', *extra, check=False)
    result = load.stop()
    channels = wait_no_channel(lab)
    seconds = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert channels == {'primary': 0, 'secondary': 0}, channels
    assert result['failed'] == 0 and result['successful'] > 0, result
    path = report_dir / ('upgrade-%s.json' % LAST)
    report = json.loads(path.read_text()) if path.exists() else None
    return proc, report, result, start, seconds


def missing(rows):
    """{side: rows the other side has and this one lacks (multiset)}."""
    a, b = Counter(rows['primary']), Counter(rows['secondary'])
    return {'primary': sum((b - a).values()), 'secondary': sum((a - b).values())}


def linkedids_without_call_log(lab, group, where):
    return psql(lab, group, "SELECT DISTINCT c.linkedid FROM cel c WHERE %s AND c.eventtype = 'LINKEDID_END' "
                            "AND NOT EXISTS (SELECT 1 FROM call_log l WHERE l.linkedid = c.linkedid) "
                            "ORDER BY 1" % where)


def rerun_cel_sync(lab, tmp_path, since):
    """The cel_sync module through ansible, on the primary as the report's rerun command runs it."""
    play = """
- name: Rerun the CEL backfill
  hosts: primary
  gather_facts: false
  tasks:
    - name: cel_sync
      wazo.maintenance_mode.cel_sync:
        since: %s
        local_name: primary
        peer_host: %s
        peer_name: secondary
        peer_password: "{{ wazo_mm_odbc_password }}"
      become: true
      become_user: postgres
""" % (json.dumps(since), lab.address('secondary'))
    run = labtools.run_playbook(tmp_path / 'rerun', [lab.path], play)
    assert run.rc == 0, run
    return [res for _play, task, _host, res in run.results() if task == 'cel_sync'][0]


def test_upgrade_under_load_keeps_cel_and_call_logs_identical(lab, load, tmp_path,
                                                              postgresql_down_during_upgrade):
    """upgrade.yml under SIPp load: afterwards both stacks hold the same CEL rows and every call's call log.

    Fails when: the run fails, SIPp counts a failed call, or a stack still has a channel 2 min after the load
    stopped; a stack's PostgreSQL was not stopped and started once during its upgrade (the outage hooks did
    not run: nothing to prove); the report's cel.error is set; the CEL rows of the window (linkedid, eventtype,
    eventtime to the microsecond, as multisets) are empty or differ between the stacks; the step backfilled
    nothing (cel.to_primary + cel.to_secondary == 0: the run lost no row and this proves nothing, see the
    control); a CEL row of the window the step covered (up to cel.window.until) has no call_log_id, or a
    LINKEDID_END of it no call_log row, on either stack; a rerun of cel_sync copies anything (changed=true: not
    idempotent, or rows still missing, including rows written after the step: cel_odbc not working both ways
    again); after the rerun's wazo-call-logs, a CEL row of the window has no call log, a LINKEDID_END linkedid
    has no call_log row, or there are fewer LINKEDID_END linkedids than SIPp's successful calls.
    """
    proc, report, result, start, seconds = upgrade_under_load(lab, load, tmp_path)
    since = sql_time(start, start.tzinfo)
    assert report is not None, proc.stdout[-4000:]
    assert postgresql_down_during_upgrade() == {g: ['stop', 'start'] for g in STACKS}
    cel = report['cel']
    assert not cel['error'], cel
    rows = {g: cel_rows(lab, g, since) for g in STACKS}
    numbers = {'sipp': result, 'cel_report': cel, 'rows': {g: len(r) for g, r in rows.items()},
               'missing_after_run': missing(rows), 'seconds': seconds, 'window_since': since}
    (tmp_path / 'cel-proof.json').write_text(json.dumps(numbers, indent=2))
    print('CEL proof:', json.dumps(numbers))
    assert rows['primary'], 'no CEL row since %s on the primary' % since
    assert Counter(rows['primary']) == Counter(rows['secondary']), numbers
    assert cel['to_primary'] + cel['to_secondary'] > 0, numbers

    # Call logs of the window the step covered (rows stamped after it are for the next wazo-call-logs run).
    until = datetime.datetime.strptime(cel['window']['until'], '%Y-%m-%dT%H:%M:%S.%fZ')
    until = sql_time(until.replace(tzinfo=datetime.timezone.utc), start.tzinfo)
    covered = "c.eventtime >= '%s' AND c.eventtime <= '%s'" % (since, until)
    for group in STACKS:
        unlogged = psql(lab, group, 'SELECT count(*) FROM cel c WHERE %s AND c.call_log_id IS NULL' % covered)
        assert unlogged == ['0'], (group, unlogged, numbers)
        assert linkedids_without_call_log(lab, group, covered) == [], (group, numbers)

    # Rerun: nothing left to copy over the whole window (up to now, after the load), no duplicate.
    rerun = rerun_cel_sync(lab, tmp_path, cel['window']['since'])
    assert rerun['changed'] is False and rerun['inserted'] == {'primary': 0, 'secondary': 0}, rerun
    # ... then the rerun's call logs: every completed call has its call log on each stack.
    window = "c.eventtime >= '%s'" % since
    for group in STACKS:
        lab.ssh(group, '. /etc/profile.d/xivo_uuid.sh && wazo-call-logs generate -d 2')
        unlogged = psql(lab, group, 'SELECT count(*) FROM cel c WHERE %s AND c.call_log_id IS NULL' % window)
        assert unlogged == ['0'], (group, unlogged)
        assert linkedids_without_call_log(lab, group, window) == [], group
        ended = int(psql(lab, group, "SELECT count(DISTINCT linkedid) FROM cel c WHERE %s "
                                     "AND eventtype = 'LINKEDID_END'" % window)[0])
        assert ended >= result['successful'], (group, ended, result)
    assert Counter(cel_rows(lab, 'primary', since)) == Counter(cel_rows(lab, 'secondary', since))


def test_control_without_cel_continuity_loses_rows(lab, load, tmp_path, postgresql_down_during_upgrade):
    """Control: the same run with -e wazo_mm_upgrade_cel_sync=false (the wazo-maintenance-mode README's
    procedure, no backfill) leaves the stacks with different CEL rows; the rows missing on each side are
    printed and written to <tmp>/cel-control.json.

    Fails when: the run fails, SIPp counts a failed call, or a stack keeps a channel; the PostgreSQL outage
    hooks did not run; the report says the CEL step ran; a stack has no CEL row in the window; the two stacks
    hold the same rows anyway (then the lab does not reproduce the loss and the proof above proves nothing);
    cel_sync, run afterwards, copies another number of rows each way than the test counted missing.
    """
    proc, report, result, start, seconds = upgrade_under_load(lab, load, tmp_path,
                                                              '-e', 'wazo_mm_upgrade_cel_sync=false')
    since = sql_time(start, start.tzinfo)
    assert report is not None, proc.stdout[-4000:]
    assert postgresql_down_during_upgrade() == {g: ['stop', 'start'] for g in STACKS}
    assert report['cel']['error'].startswith('not run'), report['cel']
    rows = {g: cel_rows(lab, g, since) for g in STACKS}
    lost = missing(rows)
    calls_missing = {side: len({r.split('|')[0] for r in Counter(rows[other]) - Counter(rows[side])})
                     for side, other in (('primary', 'secondary'), ('secondary', 'primary'))}
    numbers = {'missing': lost, 'missing_linkedids': calls_missing, 'rows': {g: len(r) for g, r in rows.items()},
               'sipp': result, 'seconds': seconds, 'window_since': since}
    (tmp_path / 'cel-control.json').write_text(json.dumps(numbers, indent=2))
    print('CEL control:', json.dumps(numbers))
    assert rows['primary'] and rows['secondary'], numbers
    assert Counter(rows['primary']) != Counter(rows['secondary']), 'no CEL row lost without the step: %s' % (
        numbers,)
    assert lost['primary'] + lost['secondary'] > 0, 'rows missing without the CEL step: %s' % numbers
    # The backfill (cel_sync, as the report's rerun command runs it) copies exactly the rows counted missing;
    # it also leaves the lab's two stacks consistent for the next proof.
    repaired = rerun_cel_sync(lab, tmp_path, start.isoformat())
    assert repaired['inserted'] == lost, (repaired['inserted'], numbers)
