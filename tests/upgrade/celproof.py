# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CEL continuity across upgrade.yml: the PostgreSQL outage the real upgrade causes, and the checks.

Each stack's Asterisk writes its CEL rows into its own PostgreSQL and, through cel_odbc, into the peer's.
While a stack's PostgreSQL is down (its upgrade), the rows its peer produces never reach it. The proof (run
inside test_upgrade.py's zero-drop run, which carries the outage hooks): after the run both stacks hold
exactly the same CEL rows (multiset of linkedid|eventtype|eventtime) for the run's window, every call has
its call log on each stack, the step really backfilled rows, and a rerun of the backfill copies nothing.
The control (test_cel_continuity.py) runs without the step and shows the rows it loses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import json
import os
import shlex
import time
from collections import Counter


import labtools  # tests/lab, on sys.path from conftest.py  # pylint: disable=import-error

# Calls of the window end before the checks: CEL rows are read after both stacks are idle.
MARGIN = datetime.timedelta(minutes=5)
ROW = "linkedid||'|'||eventtype||'|'||to_char(eventtime,'YYYY-MM-DD HH24:MI:SS.US')"
STACKS = ('primary', 'secondary')


# The stand-in's real-wazo-upgrade skips the real one's `apt-get install postgresql-15` (step 4, between
# stop_wazo and start_wazo), which restarts the cluster when a new PostgreSQL package comes with the upgrade:
# without it the lab's PostgreSQL never goes down and no CEL row is lost (measured: 0 rows to backfill either
# way). These hooks, in wazo-upgrade's own post-stop.d / pre-start.d, put that outage back for the proof and the control.
HOOKS = '/usr/share/wazo-upgrade/%s.d/50-test-cel-postgresql-%s'
OUTAGE_LOG = '/var/log/wazo-standin/test-cel-postgresql.log'
PG_UNIT = 'postgresql@15-main'


@contextlib.contextmanager
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
    try:
        yield outages
    finally:
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


def assert_cel_continuity(lab, tmp_path, report, result, start, outages):
    """After an upgrade.yml run under load with the outage hooks, both stacks hold the same CEL rows and
    every call's call log.

    Fails when: a stack's PostgreSQL was not stopped and started once during its upgrade (the outage hooks did
    not run: nothing to prove); the report's cel.error is set; the CEL rows of the window (linkedid, eventtype,
    eventtime to the microsecond, as multisets) are empty or differ between the stacks; the step backfilled
    nothing (cel.to_primary + cel.to_secondary == 0: the run lost no row and this proves nothing, see the
    control); a CEL row of the window the step covered (up to cel.window.until) has no call_log_id, or a
    LINKEDID_END of it no call_log row, on either stack; a rerun of cel_sync copies anything (changed=true: not
    idempotent, or rows still missing, including rows written after the step: cel_odbc not working both ways
    again); after the rerun's wazo-call-logs, a CEL row of the window has no call log, a LINKEDID_END linkedid
    has no call_log row, or there are fewer LINKEDID_END linkedids than SIPp's successful calls.
    """
    channels = wait_no_channel(lab)
    assert channels == {'primary': 0, 'secondary': 0}, channels
    assert outages() == {g: ['stop', 'start'] for g in STACKS}
    since = sql_time(start, start.tzinfo)
    assert report is not None, 'upgrade.yml wrote no JSON report'
    cel = report['cel']
    assert not cel['error'], cel
    rows = {g: cel_rows(lab, g, since) for g in STACKS}
    numbers = {'sipp': result, 'cel_report': cel, 'rows': {g: len(r) for g, r in rows.items()},
               'missing_after_run': missing(rows), 'window_since': since}
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
