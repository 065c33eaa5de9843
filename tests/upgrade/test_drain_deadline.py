# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proof on the lab's real Asterisk of the drain deadline and its two policies.

Long SIPp calls (300 s) are up on the primary when upgrade.yml switches to maintenance;
wazo_mm_upgrade_drain_deadline=20s:
- policy stop (control): the run stops in maintenance at the deadline with the explanation, the calls still up;
- policy hangup (the rerun resumes at the drain): the calls end at the deadline (SIPp's own end times: it
  receives Asterisk's BYE), the result lists them by channel with the cause, the upgrade completes, and the
  calls placed through the proxy meanwhile (on the secondary) all complete.
A deadline that cannot be read is refused before anything changes.

    LAB_INVENTORY=$PWD/.lab/inventory.yml .venv/bin/pytest -v tests/upgrade/test_drain_deadline.py
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import FIRST, LAST, labtools

UPGRADE = os.path.join(labtools.ROOT, 'playbooks', 'upgrade.yml')
LOAD = os.path.join(labtools.ROOT, 'tests', 'load', 'sipp_load.py')
UAC = os.path.join(labtools.ROOT, 'tests', 'standin', 'sipp', 'uac_rr.xml')
LONG_CALLS = 3
# What keeps the proof short: no pre-download, no CEL continuity (other proofs cover them), progress every 5 s.
FAST = ('-e', 'wazo_mm_upgrade_predownload=false', '-e', 'wazo_mm_upgrade_cel_sync=false',
        '-e', 'wazo_mm_upgrade_drain_progress_interval=5', '-e', 'wazo_mm_upgrade_drain_deadline=20s')
# SIPp's error trace: "<date>\t<time>\t<epoch>: Aborting call on an unexpected BYE for call: <call-id>"
UNEXPECTED_BYE = re.compile(r'(\d{9,}\.\d+): Aborting call on an unexpected BYE')


def _iso_ts(text):
    return calendar.timegm(time.strptime(text, '%Y-%m-%dT%H:%M:%SZ'))


class LongCalls(object):
    """LONG_CALLS calls of 300 s through the proxy, SIPp's default BYE handling off: a BYE from Asterisk ends the
    call as "unexpected BYE", traced with its time."""

    def __init__(self, lab, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        local_ip = labtools.host_ip_towards(lab.hosts['proxy'])
        cmd = ['sipp', '-sf', UAC, '%s:5060' % lab.hosts['proxy'], '-i', local_ip, '-p', '5072', '-s', '1000',
               '-d', '300000', '-r', '10', '-m', str(LONG_CALLS), '-timeout', '400s', '-timeout_error',
               '-nostdin', '-nd', '-default_behaviors', 'all,-bye', '-trace_err', '-error_file',
               os.path.join(self.dir, 'errors.log'), '-trace_msg', '-message_file',
               os.path.join(self.dir, 'messages.log')]
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def ended(self):
        """The epoch times of the calls Asterisk hung up (SIPp received the BYE)."""
        try:
            with open(os.path.join(self.dir, 'errors.log')) as handle:
                return [float(t) for t in UNEXPECTED_BYE.findall(handle.read())]
        except OSError:
            return []

    def byes(self):
        try:
            with open(os.path.join(self.dir, 'messages.log'), errors='replace') as handle:
                return re.findall(r'^BYE sip:.*?(?=\n\n|\Z)', handle.read(), re.M | re.S)
        except OSError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


def _channels(lab, group='primary'):
    return lab.channels(group).get('channels', 0)


def _wait_channels(lab, want, timeout=20):
    deadline = time.time() + timeout
    while _channels(lab) < want and time.time() < deadline:
        time.sleep(0.5)
    return _channels(lab)


def test_bad_deadline_refused_before_any_change(lab):
    before = lab.state()
    proc = lab.playbook(UPGRADE, '-e', 'wazo_mm_upgrade_drain_deadline=soonish', check=False)
    assert proc.returncode != 0
    assert "drain deadline 'soonish'" in proc.stdout and 'HH:MM' in proc.stdout, proc.stdout[-3000:]
    assert 'TASK [wazo.maintenance_mode.upgrade : Steps 1-2' not in proc.stdout
    assert lab.state() == before


def test_deadline_stop_then_hangup_on_the_real_asterisk(lab, tmp_path):
    lab.reset_versions()
    processed_before = lab.channels('secondary').get('processed', 0)
    long_calls = LongCalls(lab, tmp_path / 'long')
    short = os.path.join(str(tmp_path), 'short')
    try:
        assert _wait_channels(lab, LONG_CALLS) == LONG_CALLS, 'the long calls are not up on the primary'

        # Control, policy stop: stopped in maintenance at the deadline, explained, calls still up.
        proc = lab.playbook(UPGRADE, *FAST, '-e', 'wazo_mm_upgrade_drain_policy=stop', check=False)
        out = proc.stdout
        assert proc.returncode != 0
        assert 'UPGRADE STOPPED IN MAINTENANCE AT THE DRAIN DEADLINE' in out, out[-4000:]
        assert 'policy stop' in out and 'wazo_mm_upgrade_drain_policy=hangup' in out
        progress = re.findall(r'wait_for_drain: primary: (\d+) call\(s\) on the proxy, (\d+) Asterisk channel\(s\) '
                              r'left, longest (\d+) s', out)
        assert len(progress) >= 3, out[-4000:]  # every 5 s for 20 s
        print('\n'.join(line for line in out.splitlines() if 'wait_for_drain: ' in line or 'AT THE DRAIN DEADLINE' in line))
        assert all(int(c) == LONG_CALLS and int(ch) == LONG_CALLS for c, ch, _l in progress)
        state = lab.state()
        assert state['mode'] == 'maintenance' and state['versions'] == {'primary': FIRST, 'secondary': LAST}
        assert _channels(lab) == LONG_CALLS and not long_calls.ended()

        # Calls placed during maintenance through the proxy: on the secondary, none may fail.
        subprocess.run([sys.executable, LOAD, 'start', '--target', lab.hosts['proxy'], '--dir', short, '--rate', '2',
                        '--calls', '400', '--min-ms', '2000', '--max-ms', '4000', '--max-seconds', '400',
                        '--local-port', '5073'], check=True)

        # Policy hangup: the rerun resumes at the drain; at the deadline the calls are hung up, the upgrade goes on.
        env = {'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json'}
        proc = lab.playbook(UPGRADE, *FAST, '-e', 'wazo_mm_upgrade_drain_policy=hangup', check=False, env=env)
        run = labtools.JsonRun(proc)
        assert run.rc == 0, run
        drains = [res['ansible_facts']['wazo_mm_upgrade_drain'] for _p, task, _h, res in run.results()
                  if task.split(' : ')[-1].startswith('Keep the whole drain')]
        assert len(drains) == 1, run
        drain = drains[0]
        print('\n'.join(line for line in run.stdout.splitlines() if line.startswith('wait_for_drain: ')))
        print(json.dumps({k: drain.get(k) for k in ('outcome', 'deadline', 'waited', 'progress', 'hung_up', 'msg')},
                         indent=1))
        assert drain['outcome'] == 'deadline_hangup' and drain['drained'], drain
        assert len(drain['hung_up']) == LONG_CALLS, drain
        for entry in drain['hung_up']:
            assert entry['channel'].startswith('PJSIP/') and entry['caller'] == 'sipp', entry
            assert entry['cause'] == 16 and entry['redirected'] and entry['age_s'] >= 20, entry
        assert drain['progress'] and all(set(p) >= {'at', 'calls', 'channels', 'longest_s'} for p in drain['progress'])
        assert max(p['longest_s'] or 0 for p in drain['progress']) >= 20, drain['progress']
        assert drain['samples'] and drain['waited'] >= 20
        # Asterisk's BYE carries the cause.
        assert len(long_calls.byes()) == LONG_CALLS and all('Reason: Q.850;cause=16' in bye for bye in long_calls.byes())

        # The calls ended at the deadline: SIPp received Asterisk's BYE after it, within the announcement + wait.
        deadline = _iso_ts(drain['deadline'])
        ended = long_calls.ended()
        assert len(ended) == LONG_CALLS, (ended, long_calls.byes())
        print('calls ended (SIPp received the BYE) at deadline + %s s' % [round(t - deadline, 2) for t in ended])
        assert all(deadline - 2 <= t <= deadline + 30 for t in ended), (deadline, ended)

        state = lab.state()
        assert state['versions'] == {'primary': LAST, 'secondary': LAST} and state['mode'] == 'normal'
        assert not state['lock'], state
        short_result = subprocess.run([sys.executable, LOAD, 'stop', '--dir', short, '--wait', '60'], check=True,
                                      capture_output=True, text=True).stdout
        assert '"failed": 0' in short_result, short_result
        assert lab.channels('secondary').get('processed', 0) > processed_before
    finally:
        long_calls.stop()
        if os.path.exists(os.path.join(short, 'sipp.pid')) and not os.path.exists(os.path.join(short, 'result.json')):
            subprocess.run([sys.executable, LOAD, 'stop', '--dir', short, '--wait', '5'], check=False,
                           capture_output=True)
