# -*- coding: utf-8 -*-
# Copyright: contributors to wazo.maintenance_mode
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run identity and liveness on the controller, and the verdict on a lock found."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.wazo.maintenance_mode.plugins.module_utils import controller_run as cr

ME = {'run': 'me01', 'user': 'ops', 'host': 'ctl', 'pid': 100, 'pid_start': 'b:100'}


def lock(**kw):
    base = {'owner': 'upgrade.yml', 'reason': 'upgrade.yml', 'since': '2026-12-02T03:00:00Z',
            'run': 'ot01', 'user': 'eve', 'host': 'ctl', 'pid': 50, 'pid_start': 'b:50'}
    base.update(kw)
    return dict((k, v) for k, v in base.items() if v is not None)


@pytest.mark.parametrize('found, alive, takeover, verdict, words', [
    (None, False, '', cr.FREE, 'free'),
    (lock(run='me01'), True, '', cr.OURS, 'this run'),
    (lock(), True, '', cr.LIVE, 'held by upgrade.yml run ot01 of eve@ctl (pid 50) since 2026-12-02T03:00:00Z'),
    (lock(), False, '', cr.STALE, 'process is gone'),
    (lock(host='other'), False, '', cr.FOREIGN, '-e wazo_mm_upgrade_lock_takeover=ot01'),
    (lock(host='other'), True, 'ot01', cr.TAKEOVER, 'taken over as asked'),
    (lock(host='other'), True, 'nope', cr.FOREIGN, 'another controller'),
    (lock(run=None, user=None, host=None, pid=None, pid_start=None), True, '', cr.LEGACY, 'earlier version'),
    (lock(owner='wazo-mode', run=None), True, '', cr.OTHER, 'held by wazo-mode'),
])
def test_judge(found, alive, takeover, verdict, words):
    got, message = cr.judge(found, ME, 'upgrade.yml', takeover, alive_fn=lambda pid, start: alive)
    assert got == verdict and words in message, message


def test_identity_names_this_playbook_process_and_is_stable():
    one, two = cr.identity(), cr.identity()
    assert one == two and len(one['run']) == 10
    assert one['pid_start'] == cr.process_start(one['pid'])


def test_alive_checks_pid_start_time_and_command():
    proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)', 'ansible-playbook'])
    try:
        for _wait in range(100):  # until the child has exec'd (bounded: 5 s)
            if b'ansible-playbook' in open('/proc/%d/cmdline' % proc.pid, 'rb').read():
                break
            time.sleep(0.05)
        start = cr.process_start(proc.pid)
        assert cr.alive(proc.pid, start)
        assert not cr.alive(proc.pid, start + '0')  # a recycled pid
        assert not cr.alive(os.getpid(), cr.process_start(os.getpid()))  # alive, but not an ansible-playbook
    finally:
        proc.kill()
        proc.wait()
    assert not cr.alive(proc.pid, start)  # gone
    assert not cr.alive(None, '') and not cr.alive('x', '')


def test_playbook_pid_is_the_topmost_ansible_playbook_ancestor(tmp_path):
    # A fake /proc: 1 <- 20 (bash) <- 30 (ansible-playbook) <- 40 (worker, same command line) <- 50 (us)
    tree = {20: (1, b'bash'), 30: (20, b'python3\0/usr/bin/ansible-playbook\0x.yml'),
            40: (30, b'python3\0/usr/bin/ansible-playbook\0x.yml'), 50: (40, b'python3\0-c')}
    for pid, (ppid, cmd) in tree.items():
        os.makedirs(str(tmp_path / str(pid)))
        (tmp_path / str(pid) / 'stat').write_text('%d (x y)) S %d %s\n' % (pid, ppid, ' '.join(['0'] * 17 + ['777'])))
        (tmp_path / str(pid) / 'cmdline').write_bytes(cmd)
    assert cr.playbook_pid(start=50, proc=str(tmp_path)) == 30
    assert cr.process_start(30, proc=str(tmp_path)) == ':777'
