# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault proofs of the HA check on the lab's proxy (systemd, the real daemon, the real state directory).

* A daemon that hangs (SIGSTOP) is killed by the systemd watchdog and started again.
* Bytes that are not text in maintenance.lock do not kill the daemon: it counts the lock as held.
* An upgrade leaves the HA check as the operator had it: stopped and disabled stays so.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

import pytest

from conftest import LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
STATE_DIR = '/var/lib/wazo-maintenance'
UNIT = 'wazo-ha-check.service'


def unit(lab):
    """MainPID, NRestarts, ActiveState, UnitFileState and WatchdogUSec of the unit."""
    out = lab.ssh('proxy', 'systemctl show -p MainPID -p NRestarts -p ActiveState -p UnitFileState '
                           '-p WatchdogUSec %s' % UNIT).stdout
    return dict(line.split('=', 1) for line in out.strip().splitlines())


def journal_since(lab, cursor_time):
    return lab.ssh('proxy', "journalctl -q -o cat --no-pager --since '%s' -u %s" % (cursor_time, UNIT),
                   check=False).stdout


def proxy_now(lab):
    return lab.ssh('proxy', "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()


def state_is(lab, state, pid=None):
    """ha-check.json when it says `state` (and was written by `pid`, if given), else None."""
    st = labtools.ha_state(lab)
    return st if st.get('state') == state and (pid is None or st.get('pid') == pid) else None


def restarted(lab, old_pid):
    """The unit's properties once it runs again under another MainPID, else None."""
    props = unit(lab)
    return props if props['MainPID'] not in ('0', old_pid) and props['ActiveState'] == 'active' else None


def back_to_normal(lab):
    """The HA check enabled and running (restarted if it is failed), no lock, mode normal."""
    lab.ssh('proxy', 'rm -f %s/maintenance.lock %s/ha-check-paused.json; systemctl reset-failed %s; '
                     'systemctl enable --now %s' % (STATE_DIR, STATE_DIR, UNIT, UNIT), check=False)
    lab.ssh('proxy', 'wazo-mode normal --no-wait --force', check=False)
    assert labtools.wait_for(lambda: unit(lab)['ActiveState'] == 'active' and labtools.ha_state(lab).get('state') == 'normal', 20), \
        (unit(lab), labtools.ha_state(lab))


@pytest.fixture
def ha(lab):
    back_to_normal(lab)
    yield lab
    back_to_normal(lab)


def test_watchdog_restarts_a_hung_daemon(ha):
    before = unit(ha)
    watchdog = int(before['WatchdogUSec'].rstrip('s')) if before['WatchdogUSec'].rstrip('s').isdigit() else None
    assert before['WatchdogUSec'] not in ('0', 'infinity'), 'the unit has no watchdog: %s' % before
    pid = before['MainPID']
    since = proxy_now(ha)
    ha.ssh('proxy', 'kill -STOP %s' % pid)
    try:
        started = time.monotonic()
        after = labtools.wait_for(lambda: restarted(ha, pid), 10 + 5 + 15)
        took = time.monotonic() - started
        assert after, 'the hung daemon was not restarted: %s' % unit(ha)
        assert int(after['NRestarts']) > int(before['NRestarts'])
        assert took <= 10 + 5 + 10, took        # WatchdogSec + TimeoutAbortSec + restart
        log = journal_since(ha, since)
        assert 'watchdog timeout' in log.lower(), log[-2000:]
        # the new daemon runs the loop again and reports
        st = labtools.wait_for(lambda: state_is(ha, 'normal', int(after['MainPID'])), 10)
        assert st and st['state'] == 'normal', st
        assert ha.ssh('proxy', 'kill -0 %s' % pid, check=False).returncode != 0   # the hung one is gone
    finally:
        ha.ssh('proxy', 'kill -CONT %s' % pid, check=False)
    print('watchdog %s s: hung daemon replaced in %.1f s' % (watchdog, took))


def test_corrupt_lock_file_does_not_kill_the_daemon(ha):
    before = unit(ha)
    since = proxy_now(ha)
    ha.ssh('proxy', r"printf '\377\376\000garbage' > %s/maintenance.lock" % STATE_DIR)
    try:
        st = labtools.wait_for(lambda: state_is(ha, 'paused'), 10)
        assert st, labtools.ha_state(ha)
        assert 'maintenance.lock' in st['reason'] and st['lock']['owner'] == 'unknown'
        time.sleep(3)                                           # several rounds with the corrupt lock
        after = unit(ha)
        assert after['MainPID'] == before['MainPID'] and after['NRestarts'] == before['NRestarts'], (before, after)
        assert after['ActiveState'] == 'active'
        log = journal_since(ha, since)
        assert 'PAUSED' in log and 'maintenance.lock' in log, log[-2000:]
    finally:
        ha.ssh('proxy', 'rm -f %s/maintenance.lock' % STATE_DIR)
    st = labtools.wait_for(lambda: state_is(ha, 'normal'), 10)
    assert st and unit(ha)['MainPID'] == before['MainPID']


def test_upgrade_leaves_a_stopped_ha_check_stopped(ha, tmp_path):
    """The operator stopped and disabled the HA check on purpose: an upgrade pauses and resumes it, and
    leaves it stopped and disabled (it used to be started again)."""
    ha.reset_versions()
    ha.ssh('proxy', 'systemctl disable --now %s' % UNIT)
    proc = ha.playbook(UPGRADE, '-e', 'wazo_mm_upgrade_drain_timeout=240', '-e', 'wazo_mm_upgrade_cel_sync=false',
                       '-e', 'wazo_mm_upgrade_report_dir=%s' % (tmp_path / 'reports'), check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert ha.version('primary') == LAST and ha.version('secondary') == LAST
    after = unit(ha)
    assert after['ActiveState'] == 'inactive' and after['UnitFileState'] == 'disabled', after
    assert ha.ssh('proxy', 'test -e %s/ha-check-paused.json' % STATE_DIR, check=False).returncode != 0
    status = ha.route_mode()
    assert status['mode'] == 'normal' and not status['lock']
