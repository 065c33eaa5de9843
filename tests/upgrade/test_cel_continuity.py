# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CEL continuity across upgrade.yml on the lab's real Asterisk 22, under SIPp load: the control.

Each stack's Asterisk writes its CEL rows into its own PostgreSQL and, through cel_odbc, into the peer's.
While a stack's PostgreSQL is down (its upgrade), the rows its peer produces never reach it. The proof: with
upgrade.yml's CEL continuity step, after the run both stacks hold exactly the same CEL rows (multiset of
linkedid|eventtype|eventtime) for the run's window, every call has its call log on each stack, the step
really backfilled rows, and a rerun of the backfill copies nothing: celproof.assert_cel_continuity, checked
in test_upgrade.py's zero-drop run (one upgrade under load for both proofs). The control: the same run without
the step (the wazo-maintenance-mode README's procedure) leaves the two stacks with different rows; the rows
missing on each side are counted and written to <tmp>/cel-control.json.

    LAB_NAME=cel LAB_OCTET=50 make lab-up
    .venv/bin/ansible-playbook -i .lab-cel/inventory.yml setup.yml
    LAB_INVENTORY=$PWD/.lab-cel/inventory.yml .venv/bin/pytest -q -rP tests/upgrade/test_cel_continuity.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time
from collections import Counter

from celproof import STACKS, cel_rows, missing, rerun_cel_sync, sql_time, wait_no_channel, window_start
from conftest import LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
# Smaller than the zero-drop proof's load, still calls on the primary before the run and on the secondary
# during the whole maintenance window: 5 new calls/s of 2-10 s (about 25 in progress).
RATE, MIN_MS, MAX_MS = 5, 2000, 10000


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
